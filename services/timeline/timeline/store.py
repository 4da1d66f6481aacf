"""The repository: the only module that speaks to MongoDB.

Every query carries the viewer's council, the case and the visibility rule
(``visibility_filter``, the database form of ``domain.can_see``).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database

from chassis.audience import audience_filter
from chassis.events import process_once
from chassis.mongo import in_transaction
from chassis.paging import encode_cursor, newest_first_filter
from chassis.problems import NotFound

from .domain import NOT_FOUND, AbstractEntryStore, Viewer


def visibility_filter(person_id: str, role: str | None) -> dict[str, Any]:
    """The Mongo condition for "``person_id`` with ``role`` on the case may see this entry"."""
    return audience_filter(person_id, role, author_field="author.person_id")


def _to_entry(doc: dict[str, Any]) -> dict[str, Any]:
    entry = {k: v for k, v in doc.items() if k != "_id"}
    entry["entry_id"] = doc["_id"]
    return entry


def _to_doc(entry: dict[str, Any]) -> dict[str, Any]:
    doc = {k: v for k, v in entry.items() if k != "entry_id"}
    doc["_id"] = entry["entry_id"]
    return doc


class MongoEntryStore(AbstractEntryStore):
    def __init__(self, client: MongoClient, db: Database):
        self.client = client
        self.db = db
        self.entries = db["entries"]
        self.comment_docs = db["comments"]

    def ensure_indexes(self) -> None:
        self.entries.create_index([("council_id", ASCENDING), ("case_id", ASCENDING),
                                   ("occurred_at", DESCENDING), ("_id", DESCENDING)])
        # an event makes at most one entry, whatever the broker redelivers
        self.entries.create_index("source.event_id", unique=True, sparse=True, name="one_entry_per_event")
        self.comment_docs.create_index([("council_id", ASCENDING), ("case_id", ASCENDING),
                                        ("entry_id", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)])

    def _scope(self, viewer: Viewer, case_id: str) -> dict[str, Any]:
        return {"council_id": viewer.council_id, "case_id": case_id, **visibility_filter(viewer.person_id, viewer.role)}

    # --- entries -------------------------------------------------------------------------------------
    def add_entry(self, entry: dict[str, Any]) -> None:
        self.entries.insert_one(_to_doc(entry))

    def visible_page(self, viewer: Viewer, case_id: str, limit: int,
                     cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        query = self._scope(viewer, case_id)
        after = newest_first_filter(cursor, "occurred_at")
        if after:
            query = {"$and": [query, after]}
        docs = list(self.entries.find(query).sort([("occurred_at", DESCENDING), ("_id", DESCENDING)])
                    .limit(limit + 1))
        next_cursor = None
        if len(docs) > limit:
            docs = docs[:limit]
            next_cursor = encode_cursor(docs[-1]["occurred_at"], docs[-1]["_id"])
        return [_to_entry(d) for d in docs], next_cursor

    def visible_entry(self, viewer: Viewer, case_id: str, entry_id: str) -> dict[str, Any] | None:
        doc = self.entries.find_one({"_id": entry_id, **self._scope(viewer, case_id)})
        return _to_entry(doc) if doc else None

    def update_entry(self, viewer: Viewer, case_id: str, entry_id: str,
                     changes: dict[str, Any]) -> dict[str, Any]:
        # only the author's own, API-made entry: the domain checked it, the query holds it too
        doc = self.entries.find_one_and_update(
            {"_id": entry_id, "council_id": viewer.council_id, "case_id": case_id,
             "author.person_id": viewer.person_id, "source": {"$exists": False}},
            {"$set": changes},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise NotFound(NOT_FOUND)
        return _to_entry(doc)

    # --- comments ----------------------------------------------------------------------------------
    def add_comment(self, viewer: Viewer, case_id: str, entry_id: str, comment: dict[str, Any]) -> None:
        def write(session: ClientSession) -> None:
            counted = self.entries.update_one({"_id": entry_id, **self._scope(viewer, case_id)},
                                              {"$inc": {"comment_count": 1}}, session=session)
            if counted.matched_count != 1:
                raise NotFound(NOT_FOUND)
            doc = {k: v for k, v in comment.items() if k != "comment_id"}
            self.comment_docs.insert_one({"_id": comment["comment_id"], **doc}, session=session)

        in_transaction(self.client, write)

    def comments(self, viewer: Viewer, case_id: str, entry_id: str, limit: int) -> list[dict[str, Any]]:
        docs = self.comment_docs.find({"council_id": viewer.council_id, "case_id": case_id, "entry_id": entry_id})
        out = []
        for doc in docs.sort([("created_at", ASCENDING), ("_id", ASCENDING)]).limit(limit):
            comment = {k: v for k, v in doc.items() if k != "_id"}
            comment["comment_id"] = doc["_id"]
            out.append(comment)
        return out

    # --- events ------------------------------------------------------------------------------------
    def add_entry_from_event(self, envelope: dict[str, Any], entry: dict[str, Any]) -> bool:
        """The entry an event makes, at most once; False when this event was already applied."""
        return process_once(self.client, self.db, envelope,
                            lambda session: self.entries.insert_one(_to_doc(entry), session=session))
