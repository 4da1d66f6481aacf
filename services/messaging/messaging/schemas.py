"""marshmallow schemas: threads and messages as the API shows them to one viewer."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from .domain import Viewer, participants_of, sharing_agreed


class PersonRoleSchema(Schema):
    person_id = fields.String()
    role = fields.String()


class ReceiptSchema(Schema):
    person_id = fields.String()
    read_at = fields.DateTime()


class ThreadOutSchema(Schema):
    thread_id = fields.String()
    case_id = fields.String()
    subject = fields.String()
    started_by = fields.Nested(PersonRoleSchema)
    started_at = fields.DateTime()
    last_message_at = fields.DateTime()
    message_count = fields.Integer()
    unread = fields.Integer()


class MessageOutSchema(Schema):
    message_id = fields.String()
    thread_id = fields.String()
    case_id = fields.String()
    sender = fields.Nested(PersonRoleSchema)
    body = fields.String()
    attachments = fields.List(fields.String())
    sent_at = fields.DateTime()


_thread_out = ThreadOutSchema()
_message_out = MessageOutSchema()
_receipts = ReceiptSchema(many=True)


def thread_view(thread: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    """A thread as ``viewer`` sees it: whether it awaits a staff reply is shown to staff only."""
    out = _thread_out.dump(thread)
    out["participants"] = participants_of(thread)
    out["share_on_timeline"] = {"agreed": list(thread.get("share_agreed") or []), "shared": sharing_agreed(thread)}
    if viewer.is_staff:
        out["awaiting_reply"] = bool(thread.get("awaiting_reply"))
    return out


def message_view(message: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    """A message as ``viewer`` sees it: who read it is shown to its sender and to staff."""
    out = _message_out.dump(message)
    receipts = message.get("read_by") or []
    mine = message["sender"]["person_id"] == viewer.person_id
    out["read"] = mine or any(r["person_id"] == viewer.person_id for r in receipts)
    if mine or viewer.is_staff:
        out["read_by"] = _receipts.dump(receipts)
    if viewer.is_staff:
        out["needs_reply"] = bool(message.get("needs_reply"))
    return out
