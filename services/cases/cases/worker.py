"""The cases worker: relays the outbox (case_opened, member_added, member_removed) to RabbitMQ.

Run: ``python -m chassis.runworker cases.worker:CasesWorker``. It consumes no events.
"""

from __future__ import annotations

from chassis.nameko_deps import OutboxRelayProvider


class CasesWorker:
    name = "cases"
    relay = OutboxRelayProvider()
