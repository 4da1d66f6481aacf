"""Messaging's rules in plain Python: who sees a thread, who writes in it, read receipts, stories.

No pymongo, nameko or flask here. The store (``AbstractMessageStore``) applies
``can_see_thread`` as a database query; the integration tests hold the two to
the same answers.

A thread's audience is ``{kind: "named", people: <participants>, exclude: []}``:
with the platform's visibility rule that means staff on the case see every
thread of the case, a family-side member only the threads they take part in.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from chassis.audience import Viewer
from chassis.audience import can_see as audience_can_see
from chassis.audience import viewer_on as audience_viewer_on
from chassis.audited import audited
from chassis.identity import FAMILY_CASE_ROLES, STAFF_CASE_ROLES, Identity
from chassis.problems import (
    Forbidden,
    InvalidInput,
    NotFound,
    Unprocessable,
)

NOT_FOUND = "There is no such case, conversation or message, or it is not yours to see."
MAX_PARTICIPANTS = 20
MAX_ATTACHMENTS = 10
MAX_BODY = 10000
STORY_TITLE_MAX = 200
UNKNOWN_PERSON = "someone on the case"

T = TypeVar("T")
# what a message written in a thread makes: (message, thread changes, marks it clears, events)
Composed = tuple[dict[str, Any], dict[str, Any], list[str], list["OutgoingEvent"]]


@dataclass(frozen=True)
class OutgoingEvent:
    """An event to write to the outbox in the same transaction as the change it describes."""

    event_type: str
    data: dict[str, Any]
    story: dict[str, Any] | None = None


def viewer_on(who: Identity, case_id: str) -> Viewer:
    """The caller as a viewer of ``case_id``; 404 when they hold no role on it (never reveal it exists)."""
    return audience_viewer_on(who, case_id, NOT_FOUND)


def person_cases(who: Identity) -> tuple[str, dict[str, str]]:
    """(council, {case_id: role}) of a person caller, for the /me operations."""
    if not who.is_person or not who.council_id:
        raise NotFound("There is nothing here for this caller.")
    return who.council_id, {c: r for c, r in who.cases.items() if r in STAFF_CASE_ROLES | FAMILY_CASE_ROLES}


# --- the visibility rule --------------------------------------------------------------------------
def can_see_thread(thread: dict[str, Any], person_id: str, role: str | None) -> bool:
    """Whether a person with ``role`` on the thread's case sees the thread (and its messages).

    The platform's rule over the thread's audience: whoever started it always
    sees it; staff on the case see everything except where excluded; a
    family-side member sees a "named" audience only when listed.
    """
    return audience_can_see(thread["audience"], person_id, role, (thread.get("started_by") or {}).get("person_id"))


def participants_of(thread: dict[str, Any]) -> list[str]:
    return list(thread["audience"]["people"])


def is_participant(thread: dict[str, Any], person_id: str) -> bool:
    return person_id in thread["audience"]["people"]


def sharing_agreed(thread: dict[str, Any]) -> bool:
    """Message bodies go on the timeline only when every participant agreed."""
    agreed = set(thread.get("share_agreed") or ())
    return bool(agreed) and set(participants_of(thread)) <= agreed


def unread_for(messages: Iterable[dict[str, Any]], person_id: str) -> int:
    """Messages someone else sent that ``person_id`` has not read (the rule the store counts by)."""
    return sum(1 for m in messages if m["sender"]["person_id"] != person_id
               and person_id not in {r["person_id"] for r in m.get("read_by", ())})


# --- input ---------------------------------------------------------------------------------------
def normalise_participants(viewer: Viewer, others: list[str]) -> list[str]:
    """The caller first, then the others in the order given, each once."""
    people = list(dict.fromkeys([viewer.person_id, *others]))
    if len(people) < 2:
        raise Unprocessable("A conversation needs at least one other person.")
    if len(people) > MAX_PARTICIPANTS:
        raise InvalidInput(f"A conversation has at most {MAX_PARTICIPANTS} people.")
    return people


def normalise_attachments(attachments: list[str] | None) -> list[str]:
    out = list(dict.fromkeys(attachments or []))
    if len(out) > MAX_ATTACHMENTS:
        raise InvalidInput(f"A message has at most {MAX_ATTACHMENTS} attachments.")
    return out


def check_body(body: str) -> str:
    if not body.strip():
        raise InvalidInput("A message needs some words.")
    if len(body) > MAX_BODY:
        raise InvalidInput(f"A message has at most {MAX_BODY} characters.")
    return body


def parse_time(value: datetime) -> datetime:
    """An aware UTC datetime at millisecond precision (what MongoDB keeps)."""
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def utcnow() -> datetime:
    return parse_time(datetime.now(UTC))


def new_id() -> str:
    return uuid.uuid4().hex


# --- stories --------------------------------------------------------------------------------------
def _fit(title: str) -> str:
    return title if len(title) <= STORY_TITLE_MAX else title[: STORY_TITLE_MAX - 1] + "…"


def names_in_words(person_ids: list[str], names: dict[str, str]) -> str:
    """"Pat Parent", "Pat Parent and Sasha Worker", "A, B and 2 others"."""
    words = [names.get(p) or UNKNOWN_PERSON for p in person_ids]
    if not words:
        return UNKNOWN_PERSON
    if len(words) == 1:
        return words[0]
    if len(words) <= 3:
        return ", ".join(words[:-1]) + " and " + words[-1]
    return ", ".join(words[:2]) + f" and {len(words) - 2} others"


def _sentence_start(name: str) -> str:
    return name[:1].upper() + name[1:]


def thread_audience(participants: list[str]) -> dict[str, Any]:
    return {"kind": "named", "people": list(participants), "exclude": []}


def thread_started_event(thread: dict[str, Any], names: dict[str, str]) -> OutgoingEvent:
    starter = thread["started_by"]["person_id"]
    others = [p for p in participants_of(thread) if p != starter]
    title = (f"{_sentence_start(names.get(starter) or UNKNOWN_PERSON)} started a conversation with "
             f"{names_in_words(others, names)}")
    story = {"case_id": thread["case_id"], "kind": "message", "title": _fit(title),
             "occurred_at": thread["started_at"].isoformat(), "audience": dict(thread["audience"])}
    data = {"thread_id": thread["thread_id"], "case_id": thread["case_id"], "started_by": dict(thread["started_by"]),
            "participants": participants_of(thread)}
    return OutgoingEvent("thread_started", data, story)


def message_sent_event(thread: dict[str, Any], message: dict[str, Any], names: dict[str, str],
                       with_story: bool = True) -> OutgoingEvent:
    """No message body in the event's data; in the story only when every participant agreed to share."""
    sender = message["sender"]["person_id"]
    others = [p for p in participants_of(thread) if p != sender]
    data = {"thread_id": thread["thread_id"], "message_id": message["message_id"], "case_id": thread["case_id"],
            "sender": dict(message["sender"]), "participants": participants_of(thread),
            "attachment_count": len(message["attachments"])}
    story = None
    if with_story:
        title = (f"{_sentence_start(names.get(sender) or UNKNOWN_PERSON)} sent a message to "
                 f"{names_in_words(others, names)}")
        story = {"case_id": thread["case_id"], "kind": "message", "title": _fit(title),
                 "occurred_at": message["sent_at"].isoformat(), "audience": dict(thread["audience"])}
        if sharing_agreed(thread):
            story["body"] = message["body"]
    return OutgoingEvent("message_sent", data, story)


def name_from_member_added(envelope: dict[str, Any]) -> tuple[str, str, str] | None:
    """(council, person_id, display name) from a cases.member_added event, when it tells the name.

    The event's data carries no name yet; its story title is "<name> joined the case as <role>".
    """
    data = envelope.get("data") or {}
    person_id, council_id = data.get("person_id"), envelope.get("council_id")
    if not person_id or not council_id:
        return None
    name = data.get("display_name")
    if not name:
        title = (envelope.get("story") or {}).get("title") or ""
        name, found, _ = title.rpartition(" joined the case as ")
        if not found:
            return None
    name = name.strip()
    return (council_id, person_id, name[:120]) if name else None


# --- ports ----------------------------------------------------------------------------------------
class AbstractMessageStore(ABC):
    """The repository. Every read is scoped by the viewer's council, the case and the visibility rule."""

    @abstractmethod
    def add_thread(self, thread: dict[str, Any], message: dict[str, Any], events: list[OutgoingEvent]) -> None:
        """Store a new thread, its first message and their events together."""

    @abstractmethod
    def append_message(self, viewer: Viewer, case_id: str, thread_id: str,
                       compose: Callable[[dict[str, Any]], Composed]) -> tuple[dict[str, Any], dict[str, Any]]:
        """In one transaction: read the visible thread, ``compose(thread)``, store the message, apply the
        thread changes, clear the marks and write the events; (message, thread after). 404 when not visible."""

    @abstractmethod
    def visible_threads(self, viewer: Viewer, case_id: str, limit: int, cursor: str | None,
                        awaiting_only: bool = False) -> tuple[list[dict[str, Any]], str | None]:
        """Newest activity first by (last_message_at, thread_id), and the next page's cursor."""

    @abstractmethod
    def visible_thread(self, viewer: Viewer, case_id: str, thread_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def update_thread(self, viewer: Viewer, case_id: str, thread_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        ...

    @abstractmethod
    def messages_page(self, viewer: Viewer, case_id: str, thread_id: str, limit: int,
                      cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first by (sent_at, message_id); the caller checked the thread is visible."""

    @abstractmethod
    def message(self, viewer: Viewer, case_id: str, thread_id: str, message_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def set_needs_reply(self, viewer: Viewer, case_id: str, thread_id: str, message_id: str,
                        on: bool, at: datetime) -> dict[str, Any]:
        """Mark (or unmark) a message as awaiting a staff reply, on the message and its thread together."""

    @abstractmethod
    def mark_read(self, viewer: Viewer, case_id: str, thread_id: str, up_to: datetime | None,
                  at: datetime) -> int:
        """Record that the viewer read every message others sent in the thread up to ``up_to``; how many."""

    @abstractmethod
    def unread_counts(self, council_id: str, person_id: str, threads: list[dict[str, Any]]) -> dict[str, int]:
        """Per thread id, how many messages others sent that ``person_id`` has not read."""

    @abstractmethod
    def participating_threads(self, council_id: str, person_id: str, case_ids: list[str],
                              limit: int) -> list[dict[str, Any]]:
        """Threads of those cases the person takes part in."""

    @abstractmethod
    def awaiting_threads(self, council_id: str, case_ids: list[str], limit: int) -> list[dict[str, Any]]:
        """Threads of those cases with a message awaiting a staff reply, longest waiting first."""

    @abstractmethod
    def display_names(self, council_id: str, person_ids: list[str]) -> dict[str, str]: ...


class Audit(Protocol):
    def record(self, who: Identity, action: str, *, case_id: str | None = None,
               record_id: str | None = None, outcome: str = "ok") -> Any: ...


# --- the use cases ------------------------------------------------------------------------------------
class Messaging:
    """Messaging's operations; every one of them, allowed or not, leaves an audit record."""

    def __init__(self, store: AbstractMessageStore, audit: Audit, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.audit = audit
        self.clock = clock

    def _audited(self, who: Identity, action: str, case_id: str | None, record_id: str | None,
                 fn: Callable[[], T]) -> T:
        return audited(self.audit, who, action, case_id, record_id, fn, "thread_id")

    def _thread(self, viewer: Viewer, case_id: str, thread_id: str) -> dict[str, Any]:
        thread = self.store.visible_thread(viewer, case_id, thread_id)
        if thread is None:
            raise NotFound(NOT_FOUND)
        return thread

    def _with_unread(self, viewer: Viewer, threads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        mine = [t for t in threads if is_participant(t, viewer.person_id)]
        counts = self.store.unread_counts(viewer.council_id, viewer.person_id, mine) if mine else {}
        return [{**t, "unread": counts.get(t["thread_id"], 0)} for t in threads]

    # --- threads ------------------------------------------------------------------------------------
    def start_thread(self, who: Identity, case_id: str, data: dict[str, Any]) -> tuple[dict[str, Any], Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            participants = normalise_participants(viewer, data.get("participants") or [])
            now = self.clock()
            thread = {
                "thread_id": new_id(), "council_id": viewer.council_id, "case_id": case_id,
                "subject": data["subject"], "started_by": {"person_id": viewer.person_id, "role": viewer.role},
                "started_at": now, "last_message_at": now, "message_count": 1,
                "audience": thread_audience(participants),
                "share_agreed": [viewer.person_id] if data.get("share_on_timeline") else [],
                "awaiting_reply": [], "awaiting_since": None,
            }
            message = self._new_message(viewer, thread, data, now)
            names = self.store.display_names(viewer.council_id, participants)
            events = [thread_started_event(thread, names),
                      message_sent_event(thread, message, names, with_story=False)]
            self.store.add_thread(thread, message, events)
            return {**thread, "unread": 0}, viewer

        return self._audited(who, "messaging.thread.start", case_id, None, run)

    def list_threads(self, who: Identity, case_id: str, limit: int = 20, cursor: str | None = None,
                     awaiting_reply: bool = False) -> tuple[list[dict[str, Any]], str | None, Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            if awaiting_reply and not viewer.is_staff:
                raise Forbidden("Only staff on the case see which conversations await their reply.")
            items, next_cursor = self.store.visible_threads(viewer, case_id, limit, cursor, awaiting_reply)
            return self._with_unread(viewer, items), next_cursor, viewer

        return self._audited(who, "messaging.threads.list", case_id, None, run)

    def get_thread(self, who: Identity, case_id: str, thread_id: str) -> tuple[dict[str, Any], Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            return self._with_unread(viewer, [self._thread(viewer, case_id, thread_id)])[0], viewer

        return self._audited(who, "messaging.thread.read", case_id, thread_id, run)

    def set_sharing(self, who: Identity, case_id: str, thread_id: str, agree: bool) -> tuple[dict[str, Any], Viewer]:
        """A participant agrees (or no longer agrees) that message bodies go on the timeline."""

        def run():
            viewer = viewer_on(who, case_id)
            thread = self._thread(viewer, case_id, thread_id)
            if not is_participant(thread, viewer.person_id):
                raise Forbidden("Only the people in a conversation decide whether it is shared on the timeline.")
            agreed = [p for p in thread.get("share_agreed") or [] if p != viewer.person_id]
            if agree:
                agreed.append(viewer.person_id)
            thread = self.store.update_thread(viewer, case_id, thread_id, {"share_agreed": agreed})
            return self._with_unread(viewer, [thread])[0], viewer

        return self._audited(who, "messaging.thread.share", case_id, thread_id, run)

    # --- messages ------------------------------------------------------------------------------------
    def _new_message(self, viewer: Viewer, thread: dict[str, Any], data: dict[str, Any],
                     sent_at: datetime) -> dict[str, Any]:
        return {
            "message_id": new_id(), "council_id": viewer.council_id, "case_id": thread["case_id"],
            "thread_id": thread["thread_id"], "sender": {"person_id": viewer.person_id, "role": viewer.role},
            "body": check_body(data["body"]), "attachments": normalise_attachments(data.get("attachments")),
            "sent_at": sent_at, "read_by": [], "needs_reply": False,
        }

    def send_message(self, who: Identity, case_id: str, thread_id: str,
                     data: dict[str, Any]) -> tuple[dict[str, Any], Viewer]:
        """A participant writes; staff on the case may write in any thread of it and so join it.

        A message by staff answers whatever in the thread awaited a staff reply.
        """

        def run():
            viewer = viewer_on(who, case_id)
            check_body(data["body"])
            normalise_attachments(data.get("attachments"))
            seen = self._thread(viewer, case_id, thread_id)
            if not is_participant(seen, viewer.person_id) and not viewer.is_staff:
                raise Forbidden("Only the people in a conversation can write in it.")
            names = self.store.display_names(viewer.council_id, [*participants_of(seen), viewer.person_id])

            def compose(thread: dict[str, Any]) -> Composed:
                # strictly after the thread's last message, so the order of a conversation is exact
                sent_at = max(self.clock(), thread["last_message_at"] + timedelta(milliseconds=1))
                changes: dict[str, Any] = {"last_message_at": sent_at, "message_count": thread["message_count"] + 1}
                people = participants_of(thread)
                if viewer.person_id not in people:
                    if len(people) >= MAX_PARTICIPANTS:
                        raise Unprocessable(f"A conversation has at most {MAX_PARTICIPANTS} people.")
                    people.append(viewer.person_id)
                    changes["audience"] = thread_audience(people)
                cleared: list[str] = []
                if viewer.is_staff and thread.get("awaiting_reply"):
                    cleared = list(thread["awaiting_reply"])
                    changes.update(awaiting_reply=[], awaiting_since=None)
                after = {**thread, **changes}
                message = self._new_message(viewer, after, data, sent_at)
                return message, changes, cleared, [message_sent_event(after, message, names)]

            message, _after = self.store.append_message(viewer, case_id, thread_id, compose)
            return message, viewer

        return self._audited(who, "messaging.message.send", case_id, thread_id, run)

    def list_messages(self, who: Identity, case_id: str, thread_id: str, limit: int = 20,
                      cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None, Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            self._thread(viewer, case_id, thread_id)
            items, next_cursor = self.store.messages_page(viewer, case_id, thread_id, limit, cursor)
            return items, next_cursor, viewer

        return self._audited(who, "messaging.messages.list", case_id, thread_id, run)

    def mark_read(self, who: Identity, case_id: str, thread_id: str,
                  up_to: str | None = None) -> dict[str, Any]:
        """The caller has read the thread (up to and including message ``up_to``, or all of it)."""

        def run():
            viewer = viewer_on(who, case_id)
            thread = self._thread(viewer, case_id, thread_id)
            if not is_participant(thread, viewer.person_id):
                raise Forbidden("Only the people in a conversation keep read receipts in it.")
            until = None
            if up_to:
                target = self.store.message(viewer, case_id, thread_id, up_to)
                if target is None:
                    raise NotFound(NOT_FOUND)
                until = target["sent_at"]
            marked = self.store.mark_read(viewer, case_id, thread_id, until, self.clock())
            unread = self.store.unread_counts(viewer.council_id, viewer.person_id, [thread]).get(thread_id, 0)
            return {"thread_id": thread_id, "marked": marked, "unread": unread}

        return self._audited(who, "messaging.thread.mark_read", case_id, thread_id, run)

    def set_needs_reply(self, who: Identity, case_id: str, thread_id: str, message_id: str,
                        on: bool) -> tuple[dict[str, Any], Viewer]:
        """Staff on the case mark a family member's message as awaiting a staff reply (or unmark it)."""

        def run():
            viewer = viewer_on(who, case_id)
            self._thread(viewer, case_id, thread_id)
            if not viewer.is_staff:
                raise Forbidden("Only staff on the case mark messages as needing a reply.")
            message = self.store.message(viewer, case_id, thread_id, message_id)
            if message is None:
                raise NotFound(NOT_FOUND)
            if on and message["sender"]["role"] in STAFF_CASE_ROLES:
                raise Unprocessable("Only a family member's message can await a staff reply.")
            return self.store.set_needs_reply(viewer, case_id, thread_id, message_id, on, self.clock()), viewer

        return self._audited(who, "messaging.message.needs_reply", case_id, message_id, run)

    # --- across the caller's cases ------------------------------------------------------------------------
    def my_unread(self, who: Identity, limit: int = 500) -> dict[str, Any]:
        def run():
            council_id, cases = person_cases(who)
            threads = self.store.participating_threads(council_id, who.subject, sorted(cases), limit)
            counts = self.store.unread_counts(council_id, who.subject, threads) if threads else {}
            items = [{"case_id": t["case_id"], "thread_id": t["thread_id"], "unread": counts[t["thread_id"]]}
                     for t in threads if counts.get(t["thread_id"])]
            return {"total": sum(i["unread"] for i in items), "items": items}

        return self._audited(who, "messaging.me.unread", None, None, run)

    def my_awaiting_reply(self, who: Identity, limit: int = 200) -> list[dict[str, Any]]:
        def run():
            council_id, cases = person_cases(who)
            staff_cases = sorted(c for c, r in cases.items() if r in STAFF_CASE_ROLES)
            if not staff_cases:
                raise Forbidden("Only staff see which conversations await their reply.")
            threads = self.store.awaiting_threads(council_id, staff_cases, limit)
            mine = [t for t in threads if is_participant(t, who.subject)]
            counts = self.store.unread_counts(council_id, who.subject, mine) if mine else {}
            return [{**t, "unread": counts.get(t["thread_id"], 0)} for t in threads]

        return self._audited(who, "messaging.me.awaiting_reply", None, None, run)
