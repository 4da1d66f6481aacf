"""connexion handlers for contracts/messaging.yaml: parse, call the domain, shape the answer."""

from __future__ import annotations

from typing import Any

from chassis import subject_access
from chassis.subject_access import Source
from chassis.web import caller, resource

from .domain import Messaging, Viewer, can_see_thread
from .schemas import message_view, thread_view

JSON = {"Content-Type": "application/json"}  # operations also declare problem+json answers


def _messaging() -> Messaging:
    return resource("messaging")


def list_threads(case_id: str, limit: int = 20, cursor: str | None = None, awaiting_reply: bool = False):
    items, next_cursor, viewer = _messaging().list_threads(caller(), case_id, limit, cursor, awaiting_reply)
    return {"items": [thread_view(t, viewer) for t in items], "next_cursor": next_cursor}, 200, JSON


def start_thread(case_id: str, body: dict[str, Any]):
    thread, viewer = _messaging().start_thread(caller(), case_id, body)
    return thread_view(thread, viewer), 201, JSON


def get_thread(case_id: str, thread_id: str):
    thread, viewer = _messaging().get_thread(caller(), case_id, thread_id)
    return thread_view(thread, viewer), 200, JSON


def set_sharing(case_id: str, thread_id: str, body: dict[str, Any]):
    thread, viewer = _messaging().set_sharing(caller(), case_id, thread_id, body["agree"])
    return thread_view(thread, viewer), 200, JSON


def list_messages(case_id: str, thread_id: str, limit: int = 20, cursor: str | None = None):
    items, next_cursor, viewer = _messaging().list_messages(caller(), case_id, thread_id, limit, cursor)
    return {"items": [message_view(m, viewer) for m in items], "next_cursor": next_cursor}, 200, JSON


def send_message(case_id: str, thread_id: str, body: dict[str, Any]):
    message, viewer = _messaging().send_message(caller(), case_id, thread_id, body)
    return message_view(message, viewer), 201, JSON


def mark_read(case_id: str, thread_id: str, body: dict[str, Any]):
    return _messaging().mark_read(caller(), case_id, thread_id, body.get("up_to")), 200, JSON


def _needs_reply(case_id: str, thread_id: str, message_id: str, on: bool):
    message, viewer = _messaging().set_needs_reply(caller(), case_id, thread_id, message_id, on)
    return message_view(message, viewer), 200, JSON


def mark_needs_reply(case_id: str, thread_id: str, message_id: str):
    return _needs_reply(case_id, thread_id, message_id, True)


def clear_needs_reply(case_id: str, thread_id: str, message_id: str):
    return _needs_reply(case_id, thread_id, message_id, False)


def my_unread():
    return _messaging().my_unread(caller()), 200, JSON


def my_awaiting_reply():
    who = caller()
    threads = _messaging().my_awaiting_reply(who)
    shaped = [thread_view(t, Viewer(who.subject, who.council_id or "", who.cases[t["case_id"]])) for t in threads]
    return {"items": shaped}, 200, JSON


# --- subject access (chassis.subject_access): what messaging holds about one person ---------------
def _export_sources() -> list[Source]:
    return [
        Source("threads", "conversation", "thread_id", "started_at", can_see=can_see_thread,
               author_fields=("started_by.person_id",)),
        Source("messages", "message", "message_id", "sent_at", author_fields=("sender.person_id",),
               parent="conversation", link="thread_id"),
        Source("people", "name on record", "person_id", "updated_at", about_fields=("person_id",), case_field=None),
    ]


def export_person(person_id: str):
    return subject_access.export_person(person_id, _export_sources())
