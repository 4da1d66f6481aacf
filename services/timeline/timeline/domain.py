"""The timeline's rules in plain Python: who sees an entry, who may write which kind, who may edit.

No pymongo, nameko or flask here. The store (``AbstractEntryStore``) applies
``can_see`` as a database query; the integration tests hold the two to the
same answers.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from chassis.audience import Viewer
from chassis.audience import can_see as audience_can_see
from chassis.audience import viewer_on as audience_viewer_on
from chassis.audited import audited
from chassis.identity import FAMILY_CASE_ROLES, Identity
from chassis.problems import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unprocessable,
)

STAFF_KINDS = frozenset({"court_outcome", "recommendation", "meeting", "visit", "decision", "note"})
FAMILY_KINDS = frozenset({"family_note"})
EVENT_KINDS = frozenset({"membership", "document", "message", "referral", "plan", "update"})
ALL_KINDS = STAFF_KINDS | FAMILY_KINDS | EVENT_KINDS
# a family note is the family's own voice: it is written only through the API, by the family
STORY_KINDS = ALL_KINDS - FAMILY_KINDS

AUDIENCE_KINDS = ("case", "staff", "named")
MAX_COMMENTS_PER_ENTRY = 1000
NOT_FOUND = "There is no such case or entry, or it is not yours to see."

T = TypeVar("T")


def viewer_on(who: Identity, case_id: str) -> Viewer:
    """The caller as a viewer of ``case_id``; 404 when they hold no role on it (never reveal it exists)."""
    return audience_viewer_on(who, case_id, NOT_FOUND)


# --- the visibility rule (the platform's audience rule, ``chassis.audience``) ------------------------
def can_see(entry: dict[str, Any], person_id: str, role: str | None) -> bool:
    """Whether a person with ``role`` on the entry's case sees it.

    The author always sees what they wrote. Staff on the case see everything
    except where they are excluded. A family-side member sees audience "case"
    unless excluded, "named" only when listed and not excluded, never "staff".
    """
    return audience_can_see(entry["audience"], person_id, role, (entry.get("author") or {}).get("person_id"))


def sees_audience_details(entry: dict[str, Any], viewer: Viewer) -> bool:
    """Who is named or excluded is itself sensitive: only staff and the author see it."""
    return viewer.is_staff or (entry.get("author") or {}).get("person_id") == viewer.person_id


# --- writing ----------------------------------------------------------------------------------------
def check_may_create(viewer: Viewer, kind: str, audience_kind: str) -> None:
    """Staff on the case write staff kinds; the family side writes family notes, never for staff only."""
    if kind in EVENT_KINDS:
        raise Unprocessable(f"A {kind} entry is made only from another tool's event.")
    if kind not in STAFF_KINDS | FAMILY_KINDS:
        raise InvalidInput(f"There is no entry kind {kind!r}.")
    if viewer.is_staff:
        if kind not in STAFF_KINDS:
            raise Forbidden("Only a family member can write a family note.")
        return
    if kind not in FAMILY_KINDS:
        raise Forbidden("A family member can add only a family note.")
    if audience_kind == "staff":
        raise Unprocessable("A family note is for everyone on the case or for named people, not staff only.")


def normalise_audience(raw: dict[str, Any] | None) -> dict[str, Any]:
    """The audience as stored: a kind and two de-duplicated id lists; people only for "named"."""
    raw = raw or {"kind": "case"}
    kind = raw.get("kind")
    if kind not in AUDIENCE_KINDS:
        raise InvalidInput("The audience kind must be case, staff or named.")
    people = list(dict.fromkeys(raw.get("people") or []))
    exclude = list(dict.fromkeys(raw.get("exclude") or []))
    if kind == "named" and not people:
        raise InvalidInput("A named audience needs at least one person.")
    if kind != "named" and people:
        raise InvalidInput("Only a named audience lists people.")
    return {"kind": kind, "people": people, "exclude": exclude}


def parse_time(value: str | datetime, what: str = "occurred_at") -> datetime:
    """An aware UTC datetime at millisecond precision (what MongoDB keeps)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise InvalidInput(f"{what} is not an ISO 8601 date and time.") from exc
    if value.tzinfo is None:
        raise InvalidInput(f"{what} needs a time zone offset.")
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def utcnow() -> datetime:
    return parse_time(datetime.now(UTC))


def new_id() -> str:
    return uuid.uuid4().hex


def check_may_edit(entry: dict[str, Any], viewer: Viewer) -> None:
    """Only the author edits; staff never edit the family's words; event-made entries are not editable."""
    if entry.get("source"):
        raise Conflict("This entry was made from another tool's event and cannot be edited here.")
    author = entry.get("author") or {}
    if author.get("person_id") == viewer.person_id:
        return
    if viewer.is_staff and author.get("role") in FAMILY_CASE_ROLES:
        raise Forbidden("Staff cannot edit what a family wrote.")
    raise Forbidden("Only the person who wrote an entry can edit it.")


def entry_from_story(envelope: dict[str, Any], story: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The entry another tool's event asks for (``story`` already validated)."""
    return {
        "entry_id": new_id(),
        "council_id": envelope["council_id"],
        "case_id": story["case_id"],
        "kind": story["kind"],
        "title": story["title"],
        "body": story.get("body") or "",
        "occurred_at": parse_time(story.get("occurred_at") or envelope["occurred_at"]),
        "recorded_at": now,
        "edited_at": None,
        "source": {"service": envelope["source"], "event_type": envelope["type"], "event_id": envelope["id"]},
        "audience": normalise_audience(story.get("audience")),
        "comment_count": 0,
    }


# --- ports ----------------------------------------------------------------------------------------
class AbstractEntryStore(ABC):
    """The repository. Every read is scoped by the viewer's council, the case and the visibility rule."""

    @abstractmethod
    def add_entry(self, entry: dict[str, Any]) -> None: ...

    @abstractmethod
    def visible_page(self, viewer: Viewer, case_id: str, limit: int,
                     cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Up to ``limit`` entries newest first by (occurred_at, entry_id), and the next page's cursor."""

    @abstractmethod
    def visible_entry(self, viewer: Viewer, case_id: str, entry_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def update_entry(self, viewer: Viewer, case_id: str, entry_id: str,
                     changes: dict[str, Any]) -> dict[str, Any]: ...

    @abstractmethod
    def add_comment(self, viewer: Viewer, case_id: str, entry_id: str, comment: dict[str, Any]) -> None:
        """Store the comment and count it on its entry, together."""

    @abstractmethod
    def comments(self, viewer: Viewer, case_id: str, entry_id: str, limit: int) -> list[dict[str, Any]]:
        """Oldest first."""


class Audit(Protocol):
    def record(self, who: Identity, action: str, *, case_id: str | None = None,
               record_id: str | None = None, outcome: str = "ok") -> Any: ...


# --- the use cases ------------------------------------------------------------------------------------
class Timeline:
    """The timeline's operations; every one of them, allowed or not, leaves an audit record."""

    def __init__(self, store: AbstractEntryStore, audit: Audit, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.audit = audit
        self.clock = clock

    def _audited(self, who: Identity, action: str, case_id: str, record_id: str | None,
                 fn: Callable[[], T]) -> T:
        return audited(self.audit, who, action, case_id, record_id, fn, "entry_id")

    def _visible(self, viewer: Viewer, case_id: str, entry_id: str) -> dict[str, Any]:
        entry = self.store.visible_entry(viewer, case_id, entry_id)
        if entry is None:
            raise NotFound(NOT_FOUND)
        return entry

    def list_entries(self, who: Identity, case_id: str, limit: int = 20,
                     cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None, Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            items, next_cursor = self.store.visible_page(viewer, case_id, limit, cursor)
            return items, next_cursor, viewer

        return self._audited(who, "timeline.entries.list", case_id, None, run)

    def get_entry(self, who: Identity, case_id: str, entry_id: str) -> tuple[dict[str, Any], Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            return self._visible(viewer, case_id, entry_id), viewer

        return self._audited(who, "timeline.entry.read", case_id, entry_id, run)

    def create_entry(self, who: Identity, case_id: str, data: dict[str, Any]) -> tuple[dict[str, Any], Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            audience = normalise_audience(data.get("audience"))
            check_may_create(viewer, data["kind"], audience["kind"])
            entry = {
                "entry_id": new_id(),
                "council_id": viewer.council_id,
                "case_id": case_id,
                "kind": data["kind"],
                "title": data["title"],
                "body": data.get("body") or "",
                "occurred_at": parse_time(data["occurred_at"]),
                "recorded_at": self.clock(),
                "edited_at": None,
                "author": {"person_id": viewer.person_id, "role": viewer.role},
                "audience": audience,
                "comment_count": 0,
            }
            self.store.add_entry(entry)
            return entry, viewer

        return self._audited(who, "timeline.entry.create", case_id, None, run)

    def edit_entry(self, who: Identity, case_id: str, entry_id: str,
                   changes: dict[str, Any]) -> tuple[dict[str, Any], Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            entry = self._visible(viewer, case_id, entry_id)
            check_may_edit(entry, viewer)
            wanted = {k: changes[k] for k in ("title", "body") if k in changes}
            if not wanted:
                raise InvalidInput("Send a new title or body.")
            return self.store.update_entry(viewer, case_id, entry_id, {**wanted, "edited_at": self.clock()}), viewer

        return self._audited(who, "timeline.entry.edit", case_id, entry_id, run)

    def add_comment(self, who: Identity, case_id: str, entry_id: str, body: str) -> dict[str, Any]:
        def run():
            viewer = viewer_on(who, case_id)
            entry = self._visible(viewer, case_id, entry_id)
            if entry.get("comment_count", 0) >= MAX_COMMENTS_PER_ENTRY:
                raise Conflict(f"An entry takes at most {MAX_COMMENTS_PER_ENTRY} comments.")
            comment = {
                "comment_id": new_id(),
                "council_id": viewer.council_id,
                "case_id": case_id,
                "entry_id": entry_id,
                "body": body,
                "author": {"person_id": viewer.person_id, "role": viewer.role},
                "created_at": self.clock(),
            }
            self.store.add_comment(viewer, case_id, entry_id, comment)
            return comment

        return self._audited(who, "timeline.comment.create", case_id, entry_id, run)

    def list_comments(self, who: Identity, case_id: str, entry_id: str) -> list[dict[str, Any]]:
        def run():
            viewer = viewer_on(who, case_id)
            self._visible(viewer, case_id, entry_id)
            return self.store.comments(viewer, case_id, entry_id, MAX_COMMENTS_PER_ENTRY)

        return self._audited(who, "timeline.comments.list", case_id, entry_id, run)
