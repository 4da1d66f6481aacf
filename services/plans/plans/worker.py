"""The plans worker: relays the outbox (plan_published, plan_agreed, plan_reviewed) to RabbitMQ.

Run: ``python -m chassis.runworker plans.worker:PlansWorker``. It consumes no events.
"""

from __future__ import annotations

from chassis.nameko_deps import OutboxRelayProvider


class PlansWorker:
    name = "plans"
    relay = OutboxRelayProvider()
