"""The documents worker: relays the outbox (document_added, document_version_added) to RabbitMQ.

Run: ``python -m chassis.runworker documents.worker:DocumentsWorker``. It consumes no events.
"""

from __future__ import annotations

from chassis.nameko_deps import OutboxRelayProvider


class DocumentsWorker:
    name = "documents"
    relay = OutboxRelayProvider()
