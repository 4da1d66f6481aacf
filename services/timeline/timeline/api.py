"""connexion handlers for contracts/timeline.yaml: parse, call the domain, shape the answer."""

from __future__ import annotations

from typing import Any

from chassis import subject_access
from chassis.subject_access import Source
from chassis.web import caller, resource

from .domain import Timeline, Viewer, can_see, sees_audience_details
from .schemas import comment_out, entry_out

JSON = {"Content-Type": "application/json"}  # operations also declare problem+json answers


def _timeline() -> Timeline:
    return resource("timeline")


def _shown(entry: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    out = entry_out.dump(entry)
    if not sees_audience_details(entry, viewer):
        out["audience"] = {"kind": entry["audience"]["kind"]}
    if out.get("edited_at") is None:
        out.pop("edited_at", None)
    return out


def list_entries(case_id: str, limit: int = 20, cursor: str | None = None):
    items, next_cursor, viewer = _timeline().list_entries(caller(), case_id, limit, cursor)
    return {"items": [_shown(e, viewer) for e in items], "next_cursor": next_cursor}, 200, JSON


def create_entry(case_id: str, body: dict[str, Any]):
    entry, viewer = _timeline().create_entry(caller(), case_id, body)
    return _shown(entry, viewer), 201, JSON


def get_entry(case_id: str, entry_id: str):
    entry, viewer = _timeline().get_entry(caller(), case_id, entry_id)
    return _shown(entry, viewer), 200, JSON


def edit_entry(case_id: str, entry_id: str, body: dict[str, Any]):
    entry, viewer = _timeline().edit_entry(caller(), case_id, entry_id, body)
    return _shown(entry, viewer), 200, JSON


def add_comment(case_id: str, entry_id: str, body: dict[str, Any]):
    return comment_out.dump(_timeline().add_comment(caller(), case_id, entry_id, body["body"])), 201, JSON


def list_comments(case_id: str, entry_id: str):
    return {"items": comment_out.dump(_timeline().list_comments(caller(), case_id, entry_id), many=True)}, 200, JSON


# --- subject access (chassis.subject_access): what the timeline holds about one person ----------------
def _export_sources() -> list[Source]:
    return [
        Source("entries", "timeline entry", "entry_id", "occurred_at", can_see=can_see,
               author_fields=("author.person_id",)),
        Source("comments", "timeline comment", "comment_id", "created_at", author_fields=("author.person_id",),
               parent="timeline entry", link="entry_id"),
    ]


def export_person(person_id: str):
    return subject_access.export_person(person_id, _export_sources())
