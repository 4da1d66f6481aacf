"""The audit trail: every read and write of case data, append-only.

Each service writes its own trail into its own database (``audit``
collection); no API of any service updates or deletes audit records.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pymongo.client_session import ClientSession
from pymongo.database import Database

from .identity import Identity


class AuditTrail:
    def __init__(self, db: Database, service: str):
        self.collection = db["audit"]
        self.service = service

    def ensure_indexes(self) -> None:
        self.collection.create_index([("council_id", 1), ("case_id", 1), ("at", -1)])
        self.collection.create_index([("council_id", 1), ("record_id", 1), ("at", -1)])

    def record(self, who: Identity, action: str, *, case_id: str | None = None,
               record_id: str | None = None, outcome: str = "ok",
               session: ClientSession | None = None) -> None:
        """Write one audit record: who, for which council, what, when (UTC), from where, outcome."""
        self.collection.insert_one(
            {
                "at": datetime.now(timezone.utc),
                "service": self.service,
                "actor": who.subject,
                "actor_kind": who.actor,
                "council_id": who.council_id,
                "action": action,
                "case_id": case_id,
                "record_id": record_id,
                "outcome": outcome,
                "from": who.client_ip,
                "token_id": who.token_id,
            },
            session=session,
        )
