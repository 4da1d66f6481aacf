"""marshmallow schemas: referrals and conversations as the API shows them.

Event payloads are built by ``domain.referral_event`` and checked against
contracts/events/referrals.*.json by the outbox before they are stored.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from .domain import Viewer


class StampSchema(Schema):
    person_id = fields.String()
    role = fields.String()


class AudienceSchema(Schema):
    kind = fields.String()
    people = fields.List(fields.String())
    exclude = fields.List(fields.String())


class HistorySchema(Schema):
    at = fields.DateTime()
    by = fields.Nested(StampSchema)
    action = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    note = fields.String(allow_none=True)


class InfoRequestSchema(Schema):
    question = fields.String()
    asked_by = fields.Nested(StampSchema)
    asked_at = fields.DateTime()
    answer = fields.String(allow_none=True)
    answered_by = fields.Nested(StampSchema, allow_none=True)
    answered_at = fields.DateTime(allow_none=True)


class DecisionSchema(Schema):
    outcome = fields.String()
    reason = fields.String(allow_none=True)
    by = fields.Nested(StampSchema)
    at = fields.DateTime()


class ReferralSchema(Schema):
    referral_id = fields.String()
    case_id = fields.String()
    subject_person_id = fields.String()
    service = fields.String()
    reasons = fields.String()
    concerns = fields.String()
    urgency = fields.String()
    parents_informed = fields.Boolean()
    parents_consented = fields.Boolean()
    no_consent_reason = fields.String(allow_none=True)
    attachments = fields.List(fields.String())
    referrer = fields.Nested(StampSchema)
    status = fields.String()
    audience = fields.Nested(AudienceSchema)
    info_requests = fields.List(fields.Nested(InfoRequestSchema))
    decision = fields.Nested(DecisionSchema, allow_none=True)
    history = fields.List(fields.Nested(HistorySchema))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    version = fields.Integer()


referral_schema = ReferralSchema()
# what a family member sees of a referral staff shared with them: not the staff's working notes
family_view = ReferralSchema(exclude=("history", "info_requests", "decision", "version"))


def referral_out(referral: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    if viewer.is_staff or referral["referrer"]["person_id"] == viewer.person_id:
        return referral_schema.dump(referral)
    out = family_view.dump(referral)
    out["audience"] = {"kind": referral["audience"]["kind"]}  # who else is named or excluded is not theirs
    return out
