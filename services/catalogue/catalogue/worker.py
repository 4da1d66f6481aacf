"""The catalogue's nameko worker: it only relays the outbox (tool_enabled, tool_disabled) to RabbitMQ.

Run: ``python -m chassis.runworker catalogue.worker:CatalogueWorker``
"""

from __future__ import annotations

from chassis.nameko_deps import OutboxRelayProvider


class CatalogueWorker:
    """Publishes ``catalogue.events`` from the outbox; consumes nothing."""

    name = "catalogue"
    relay = OutboxRelayProvider()
