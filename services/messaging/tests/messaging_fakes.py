"""A fake of the messaging repository over dicts, applying the domain's own rules (no servers)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chassis.paging import decode_cursor, encode_cursor
from chassis.problems import NotFound
from messaging.domain import (
    NOT_FOUND,
    AbstractMessageStore,
    OutgoingEvent,
    Viewer,
    can_see_thread,
    is_participant,
    unread_for,
)


def _page(items: list[dict[str, Any]], key: str, id_key: str, limit: int, cursor: str | None):
    items = sorted(items, key=lambda r: (r[key], r[id_key]), reverse=True)
    if cursor:
        when, last = decode_cursor(cursor)
        items = [r for r in items if (r[key], r[id_key]) < (when, last)]
    page = items[:limit]
    return page, (encode_cursor(page[-1][key], page[-1][id_key]) if len(items) > limit else None)


class FakeStore(AbstractMessageStore):
    def __init__(self, names: dict[tuple[str, str], str] | None = None):
        self.threads: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.events: list[OutgoingEvent] = []
        self.names = dict(names or {})

    def _visible(self, viewer: Viewer, case_id: str) -> list[dict[str, Any]]:
        return [t for t in self.threads.values() if t["council_id"] == viewer.council_id
                and t["case_id"] == case_id and can_see_thread(t, viewer.person_id, viewer.role)]

    def add_thread(self, thread, message, events):
        self.threads[thread["thread_id"]] = dict(thread)
        self.messages[message["message_id"]] = dict(message)
        self.events.extend(events)

    def append_message(self, viewer, case_id, thread_id, compose):
        thread = self.visible_thread(viewer, case_id, thread_id)
        if thread is None:
            raise NotFound(NOT_FOUND)
        message, changes, cleared, events = compose(dict(thread))
        self.threads[thread_id].update(changes)
        for message_id in cleared:
            self.messages[message_id]["needs_reply"] = False
        self.messages[message["message_id"]] = dict(message)
        self.events.extend(events)
        return message, dict(self.threads[thread_id])

    def visible_threads(self, viewer, case_id, limit, cursor, awaiting_only=False):
        items = [t for t in self._visible(viewer, case_id) if t["awaiting_reply"] or not awaiting_only]
        return _page(items, "last_message_at", "thread_id", limit, cursor)

    def visible_thread(self, viewer, case_id, thread_id):
        return next((dict(t) for t in self._visible(viewer, case_id) if t["thread_id"] == thread_id), None)

    def update_thread(self, viewer, case_id, thread_id, changes):
        self.threads[thread_id].update(changes)
        return dict(self.threads[thread_id])

    def _in(self, viewer, case_id, thread_id):
        return [m for m in self.messages.values() if m["council_id"] == viewer.council_id
                and m["case_id"] == case_id and m["thread_id"] == thread_id]

    def messages_page(self, viewer, case_id, thread_id, limit, cursor):
        return _page(self._in(viewer, case_id, thread_id), "sent_at", "message_id", limit, cursor)

    def message(self, viewer, case_id, thread_id, message_id):
        return next((m for m in self._in(viewer, case_id, thread_id) if m["message_id"] == message_id), None)

    def set_needs_reply(self, viewer, case_id, thread_id, message_id, on, at: datetime):
        message = self.messages[message_id]
        message["needs_reply"] = on
        thread = self.threads[thread_id]
        waiting = [m for m in thread["awaiting_reply"] if m != message_id] + ([message_id] if on else [])
        thread.update(awaiting_reply=waiting, awaiting_since=(thread["awaiting_since"] or at) if waiting else None)
        return message

    def mark_read(self, viewer, case_id, thread_id, up_to, at):
        n = 0
        for m in self._in(viewer, case_id, thread_id):
            if m["sender"]["person_id"] == viewer.person_id or (up_to is not None and m["sent_at"] > up_to):
                continue
            if viewer.person_id not in {r["person_id"] for r in m["read_by"]}:
                m["read_by"].append({"person_id": viewer.person_id, "read_at": at})
                n += 1
        return n

    def unread_counts(self, council_id, person_id, threads):
        out = {}
        for t in threads:
            n = unread_for([m for m in self.messages.values() if m["council_id"] == council_id
                            and m["thread_id"] == t["thread_id"]], person_id)
            if n:
                out[t["thread_id"]] = n
        return out

    def participating_threads(self, council_id, person_id, case_ids, limit):
        return [t for t in self.threads.values() if t["council_id"] == council_id and t["case_id"] in case_ids
                and is_participant(t, person_id)][:limit]

    def awaiting_threads(self, council_id, case_ids, limit):
        found = [t for t in self.threads.values() if t["council_id"] == council_id and t["case_id"] in case_ids
                 and t["awaiting_reply"]]
        return sorted(found, key=lambda t: (t["awaiting_since"], t["thread_id"]))[:limit]

    def display_names(self, council_id, person_ids):
        return {p: self.names[(council_id, p)] for p in person_ids if (council_id, p) in self.names}


class FakeAudit:
    def __init__(self):
        self.records: list[dict[str, Any]] = []

    def record(self, who, action, *, case_id=None, record_id=None, outcome="ok"):
        self.records.append({"actor": who.subject, "action": action, "case_id": case_id,
                             "record_id": record_id, "outcome": outcome})
