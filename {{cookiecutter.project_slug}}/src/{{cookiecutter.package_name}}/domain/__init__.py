"""The service's own domain: models and the stores behind them.

A model in any module here is found by Alembic (models.py): nothing to list in migrations/env.py.
"""
