"""The audit trail: every read and write of case data, append-only.

Each service writes its own trail into its own database (``audit``
collection); no API of any service updates or deletes audit records: the
trail has ``record`` (insert) and ``search`` (read) and nothing else, and
``chassis.audit_api`` serves ``GET /audit`` only. Records hold ids, never
names or free text.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pymongo import DESCENDING
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
        self.collection.create_index([("council_id", 1), ("actor", 1), ("at", -1)])

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

    def search(self, council_id: str, *, case_id: str | None = None, record_id: str | None = None,
               actor: str | None = None, case_ids: list[str] | None = None,
               limit: int = 100) -> list[dict[str, Any]]:
        """Audit records of one council, newest first; ``case_ids`` limits them to those cases."""
        query: dict[str, Any] = {"council_id": council_id}
        if case_id is not None:
            query["case_id"] = case_id
        if case_ids is not None:
            query.setdefault("$and", []).append({"case_id": {"$in": list(case_ids)}})
        if record_id is not None:
            query["record_id"] = record_id
        if actor is not None:
            query["actor"] = actor
        docs = self.collection.find(query, {"_id": 0}).sort([("at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return list(docs)
