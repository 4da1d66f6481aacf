"""The messaging worker: relays the outbox (thread_started, message_sent) and learns display names.

Run: ``python -m chassis.runworker messaging.worker:MessagingWorker``. It consumes
``cases.member_added`` to keep the names it writes in its timeline stories
("Sam Okafor sent a message to Priya Shah").
"""

from __future__ import annotations

import logging
from typing import Any

from chassis.config import Settings
from chassis.events import reliable_handler
from chassis.mongo import connect
from chassis.nameko_deps import OutboxRelayProvider, Resource

from .domain import name_from_member_added
from .store import MongoMessageStore

log = logging.getLogger(__name__)


def _store(settings: Settings) -> MongoMessageStore:
    client = connect(settings.mongo_uri, f"{settings.service_name}-worker")
    store = MongoMessageStore(client, client[settings.mongo_db])
    store.ensure_indexes()
    return store


class MessagingWorker:
    name = "messaging"
    relay = OutboxRelayProvider()
    store = Resource(_store)

    @reliable_handler("cases", "member_added")
    def handle_member_added(self, event: dict[str, Any]) -> None:
        found = name_from_member_added(event)
        if found is None:
            log.info("member_added event %s tells no name", event.get("id"))
            return
        council_id, person_id, name = found
        self.store.remember_name(event, council_id, person_id, name)
