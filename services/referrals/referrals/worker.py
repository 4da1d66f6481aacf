"""The referrals worker: relays the outbox (referral_submitted, referral_status_changed) to RabbitMQ and
keeps the projection of case memberships (who is on which case) from the case directory's events.

Run: ``python -m chassis.runworker referrals.worker:ReferralsWorker``.
"""

from __future__ import annotations

import logging
from typing import Any

from chassis.config import Settings
from chassis.events import reliable_handler
from chassis.mongo import connect
from chassis.nameko_deps import OutboxRelayProvider, Resource

from .store import MongoReferralStore

log = logging.getLogger(__name__)


def membership_store(settings: Settings) -> MongoReferralStore:
    client = connect(settings.mongo_uri, f"{settings.service_name}-worker")
    store = MongoReferralStore(client, client[settings.mongo_db])
    store.ensure_indexes()
    return store


class ReferralsWorker:
    """Publishes the referrals' events; projects case memberships, each event at most once."""

    name = "referrals"
    relay = OutboxRelayProvider()
    store = Resource(membership_store)

    @reliable_handler("cases", "member_added")
    def handle_member_added(self, event: dict[str, Any]) -> None:
        if not self.store.apply_membership(event):
            log.info("event %s already applied", event.get("id"))

    @reliable_handler("cases", "member_removed")
    def handle_member_removed(self, event: dict[str, Any]) -> None:
        if not self.store.apply_membership(event):
            log.info("event %s already applied", event.get("id"))
