"""The repository: the only module that speaks to MongoDB.

Every query carries the council, the case and the visibility rule
(``visibility_filter``, the database form of ``domain.can_see_thread``).
Writes that publish events write the outbox in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database

from chassis.audience import audience_filter
from chassis.events import process_once
from chassis.mongo import in_transaction
from chassis.outbox import Outbox
from chassis.paging import encode_cursor, newest_first_filter
from chassis.problems import NotFound

from .domain import NOT_FOUND, AbstractMessageStore, Composed, OutgoingEvent, Viewer

SERVICE = "messaging"


def visibility_filter(person_id: str, role: str | None) -> dict[str, Any]:
    """The Mongo condition for "``person_id`` with ``role`` on the case may see this thread"."""
    return audience_filter(person_id, role, author_field="started_by.person_id")


def _out(doc: dict[str, Any], key: str) -> dict[str, Any]:
    record = {k: v for k, v in doc.items() if k != "_id"}
    record[key] = doc["_id"]
    return record


def _doc(record: dict[str, Any], key: str) -> dict[str, Any]:
    doc = {k: v for k, v in record.items() if k != key}
    doc["_id"] = record[key]
    return doc


def _page(docs: list[dict[str, Any]], limit: int, time_field: str) -> tuple[list[dict[str, Any]], str | None]:
    if len(docs) > limit:
        docs = docs[:limit]
        return docs, encode_cursor(docs[-1][time_field], docs[-1]["_id"])
    return docs, None


class MongoMessageStore(AbstractMessageStore):
    def __init__(self, client: MongoClient, db: Database):
        self.client = client
        self.db = db
        self.threads = db["threads"]
        self.messages = db["messages"]
        self.people = db["people"]
        self.outbox = Outbox(db, SERVICE)

    def ensure_indexes(self) -> None:
        self.threads.create_index([("council_id", ASCENDING), ("case_id", ASCENDING),
                                   ("last_message_at", DESCENDING), ("_id", DESCENDING)])
        self.threads.create_index([("council_id", ASCENDING), ("audience.people", ASCENDING)])
        self.threads.create_index([("council_id", ASCENDING), ("awaiting_since", ASCENDING)])
        self.messages.create_index([("council_id", ASCENDING), ("case_id", ASCENDING), ("thread_id", ASCENDING),
                                    ("sent_at", DESCENDING), ("_id", DESCENDING)])
        self.people.create_index([("council_id", ASCENDING), ("person_id", ASCENDING)], unique=True)
        self.outbox.ensure_indexes()

    def _scope(self, viewer: Viewer, case_id: str) -> dict[str, Any]:
        return {"council_id": viewer.council_id, "case_id": case_id,
                **visibility_filter(viewer.person_id, viewer.role)}

    def _publish(self, session: ClientSession, council_id: str, events: list[OutgoingEvent]) -> None:
        for event in events:
            self.outbox.add(session, event.event_type, council_id, event.data, event.story)

    # --- threads -------------------------------------------------------------------------------------
    def add_thread(self, thread: dict[str, Any], message: dict[str, Any], events: list[OutgoingEvent]) -> None:
        def write(session: ClientSession) -> None:
            self.threads.insert_one(_doc(thread, "thread_id"), session=session)
            self.messages.insert_one(_doc(message, "message_id"), session=session)
            self._publish(session, thread["council_id"], events)

        in_transaction(self.client, write)

    def visible_threads(self, viewer: Viewer, case_id: str, limit: int, cursor: str | None,
                        awaiting_only: bool = False) -> tuple[list[dict[str, Any]], str | None]:
        query: dict[str, Any] = self._scope(viewer, case_id)
        conditions = [query]
        if awaiting_only:
            conditions.append({"awaiting_reply.0": {"$exists": True}})
        after = newest_first_filter(cursor, "last_message_at")
        if after:
            conditions.append(after)
        if len(conditions) > 1:
            query = {"$and": conditions}
        docs = list(self.threads.find(query).sort([("last_message_at", DESCENDING), ("_id", DESCENDING)])
                    .limit(limit + 1))
        docs, next_cursor = _page(docs, limit, "last_message_at")
        return [_out(d, "thread_id") for d in docs], next_cursor

    def visible_thread(self, viewer: Viewer, case_id: str, thread_id: str) -> dict[str, Any] | None:
        doc = self.threads.find_one({"_id": thread_id, **self._scope(viewer, case_id)})
        return _out(doc, "thread_id") if doc else None

    def update_thread(self, viewer: Viewer, case_id: str, thread_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        doc = self.threads.find_one_and_update({"_id": thread_id, **self._scope(viewer, case_id)},
                                               {"$set": changes}, return_document=ReturnDocument.AFTER)
        if doc is None:
            raise NotFound(NOT_FOUND)
        return _out(doc, "thread_id")

    def participating_threads(self, council_id: str, person_id: str, case_ids: list[str],
                              limit: int) -> list[dict[str, Any]]:
        if not case_ids:
            return []
        docs = self.threads.find({"council_id": council_id, "case_id": {"$in": case_ids},
                                  "audience.people": person_id, "audience.exclude": {"$nin": [person_id]}})
        return [_out(d, "thread_id") for d in docs.sort([("last_message_at", DESCENDING), ("_id", DESCENDING)])
                .limit(limit)]

    def awaiting_threads(self, council_id: str, case_ids: list[str], limit: int) -> list[dict[str, Any]]:
        if not case_ids:
            return []
        docs = self.threads.find({"council_id": council_id, "case_id": {"$in": case_ids},
                                  "awaiting_reply.0": {"$exists": True}})
        return [_out(d, "thread_id") for d in docs.sort([("awaiting_since", ASCENDING), ("_id", ASCENDING)])
                .limit(limit)]

    # --- messages ------------------------------------------------------------------------------------
    def append_message(self, viewer: Viewer, case_id: str, thread_id: str,
                       compose: Callable[[dict[str, Any]], Composed]) -> tuple[dict[str, Any], dict[str, Any]]:
        def write(session: ClientSession) -> tuple[dict[str, Any], dict[str, Any]]:
            doc = self.threads.find_one({"_id": thread_id, **self._scope(viewer, case_id)}, session=session)
            if doc is None:
                raise NotFound(NOT_FOUND)
            message, changes, cleared, events = compose(_out(doc, "thread_id"))
            after = self.threads.find_one_and_update(
                {"_id": thread_id, "council_id": viewer.council_id, "case_id": case_id},
                {"$set": changes}, return_document=ReturnDocument.AFTER, session=session)
            if cleared:
                self.messages.update_many({"council_id": viewer.council_id, "case_id": case_id,
                                           "thread_id": thread_id, "_id": {"$in": cleared}},
                                          {"$set": {"needs_reply": False}}, session=session)
            self.messages.insert_one(_doc(message, "message_id"), session=session)
            self._publish(session, viewer.council_id, events)
            return message, _out(after, "thread_id")

        return in_transaction(self.client, write)

    def _message_scope(self, viewer: Viewer, case_id: str, thread_id: str) -> dict[str, Any]:
        return {"council_id": viewer.council_id, "case_id": case_id, "thread_id": thread_id}

    def messages_page(self, viewer: Viewer, case_id: str, thread_id: str, limit: int,
                      cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        query = self._message_scope(viewer, case_id, thread_id)
        after = newest_first_filter(cursor, "sent_at")
        if after:
            query = {"$and": [query, after]}
        docs = list(self.messages.find(query).sort([("sent_at", DESCENDING), ("_id", DESCENDING)]).limit(limit + 1))
        docs, next_cursor = _page(docs, limit, "sent_at")
        return [_out(d, "message_id") for d in docs], next_cursor

    def message(self, viewer: Viewer, case_id: str, thread_id: str, message_id: str) -> dict[str, Any] | None:
        doc = self.messages.find_one({"_id": message_id, **self._message_scope(viewer, case_id, thread_id)})
        return _out(doc, "message_id") if doc else None

    def set_needs_reply(self, viewer: Viewer, case_id: str, thread_id: str, message_id: str,
                        on: bool, at: datetime) -> dict[str, Any]:
        def write(session: ClientSession) -> dict[str, Any]:
            thread = self.threads.find_one({"_id": thread_id, **self._scope(viewer, case_id)}, session=session)
            if thread is None:
                raise NotFound(NOT_FOUND)
            doc = self.messages.find_one_and_update(
                {"_id": message_id, **self._message_scope(viewer, case_id, thread_id)},
                {"$set": {"needs_reply": on}}, return_document=ReturnDocument.AFTER, session=session)
            if doc is None:
                raise NotFound(NOT_FOUND)
            waiting = [m for m in thread.get("awaiting_reply") or [] if m != message_id]
            if on:
                waiting.append(message_id)
            since = (thread.get("awaiting_since") or at) if waiting else None
            self.threads.update_one({"_id": thread_id, "council_id": viewer.council_id},
                                    {"$set": {"awaiting_reply": waiting, "awaiting_since": since}}, session=session)
            return _out(doc, "message_id")

        return in_transaction(self.client, write)

    def mark_read(self, viewer: Viewer, case_id: str, thread_id: str, up_to: datetime | None,
                  at: datetime) -> int:
        query: dict[str, Any] = {**self._message_scope(viewer, case_id, thread_id),
                                 "sender.person_id": {"$ne": viewer.person_id},
                                 "read_by.person_id": {"$ne": viewer.person_id}}
        if up_to is not None:
            query["sent_at"] = {"$lte": up_to}
        result = self.messages.update_many(query, {"$push": {"read_by": {"person_id": viewer.person_id,
                                                                         "read_at": at}}})
        return result.modified_count

    def unread_counts(self, council_id: str, person_id: str, threads: list[dict[str, Any]]) -> dict[str, int]:
        if not threads:
            return {}
        pipeline = [
            {"$match": {"council_id": council_id,
                        "case_id": {"$in": sorted({t["case_id"] for t in threads})},
                        "thread_id": {"$in": [t["thread_id"] for t in threads]},
                        "sender.person_id": {"$ne": person_id},
                        "read_by.person_id": {"$ne": person_id}}},
            {"$group": {"_id": "$thread_id", "n": {"$sum": 1}}},
        ]
        return {row["_id"]: int(row["n"]) for row in self.messages.aggregate(pipeline)}

    # --- names (from the case directory's events) ---------------------------------------------------
    def display_names(self, council_id: str, person_ids: list[str]) -> dict[str, str]:
        docs = self.people.find({"council_id": council_id, "person_id": {"$in": list(person_ids)}},
                                {"person_id": 1, "display_name": 1})
        return {d["person_id"]: d["display_name"] for d in docs}

    def remember_name(self, envelope: dict[str, Any], council_id: str, person_id: str, name: str) -> bool:
        """Keep a person's display name from an event, at most once per event."""
        return process_once(self.client, self.db, envelope, lambda session: self.people.update_one(
            {"council_id": council_id, "person_id": person_id},
            {"$set": {"display_name": name}}, upsert=True, session=session))
