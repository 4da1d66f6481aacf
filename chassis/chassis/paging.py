"""Opaque cursors for newest-first pages ordered by (timestamp, id)."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from .problems import InvalidInput


def encode_cursor(when: datetime, record_id: str) -> str:
    raw = json.dumps([when.isoformat(), record_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        when, record_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(when), str(record_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("The cursor is not one this service gave out.") from exc


def newest_first_filter(cursor: str | None, time_field: str, id_field: str = "_id") -> dict:
    """The Mongo condition for the page after ``cursor``."""
    if not cursor:
        return {}
    when, record_id = decode_cursor(cursor)
    return {"$or": [{time_field: {"$lt": when}}, {time_field: when, id_field: {"$lt": record_id}}]}
