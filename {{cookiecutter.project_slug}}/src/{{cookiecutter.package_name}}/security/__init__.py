"""The service's edge: who may call it, from where, and how."""
