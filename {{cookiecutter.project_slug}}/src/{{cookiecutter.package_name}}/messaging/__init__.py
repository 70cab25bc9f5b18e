"""Messaging: events published to RabbitMQ and consumed by the worker (`python -m
{{ cookiecutter.package_name }}.worker`).

broker.py connects and declares the topology, events.py is what travels, consumer.py handles
deliveries in the worker.
{%- if cookiecutter.database != "none" %} outbox.py keeps events in the write's own transaction and
relays them to the broker from the service's lifespan.
{%- else %} publisher.py publishes right after a write, with the broker's confirm.
{%- endif %}
"""
