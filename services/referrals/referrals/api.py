"""connexion handlers for contracts/referrals.yaml: parse, call the domain, shape the answer."""

from __future__ import annotations

from typing import Any

from chassis import subject_access
from chassis.identity import STAFF_CASE_ROLES
from chassis.subject_access import Source
from chassis.web import caller, resource

from .conversation import Conversations
from .domain import Referrals
from .domain import can_see as can_see_referral
from .schemas import referral_out

JSON = {"Content-Type": "application/json"}  # operations also declare problem+json answers


def _referrals() -> Referrals:
    return resource("referrals")


def _conversations() -> Conversations:
    return resource("conversations")


# --- council settings ---------------------------------------------------------------------------
def get_services():
    return {"services": _referrals().get_services(caller())}, 200, JSON


def put_services(body: dict[str, Any]):
    return {"services": _referrals().put_services(caller(), body["services"])}, 200, JSON


def get_script():
    return _conversations().get_script(caller()), 200, JSON


def put_script(body: dict[str, Any]):
    return _conversations().put_script(caller(), body), 200, JSON


# --- referrals (the form) -------------------------------------------------------------------------
def create_referral(case_id: str, body: dict[str, Any]):
    referral, viewer = _referrals().create_referral(caller(), case_id, body)
    return referral_out(referral, viewer), 201, JSON


def list_referrals(case_id: str, limit: int = 100):
    items, viewer = _referrals().list_referrals(caller(), case_id, limit)
    return {"items": [referral_out(r, viewer) for r in items]}, 200, JSON


def get_referral(case_id: str, referral_id: str):
    referral, viewer = _referrals().get_referral(caller(), case_id, referral_id)
    return referral_out(referral, viewer), 200, JSON


def edit_referral(case_id: str, referral_id: str, body: dict[str, Any]):
    referral, viewer = _referrals().edit_draft(caller(), case_id, referral_id, body)
    return referral_out(referral, viewer), 200, JSON


def share_referral(case_id: str, referral_id: str, body: dict[str, Any]):
    referral, viewer = _referrals().share(caller(), case_id, referral_id, body)
    return referral_out(referral, viewer), 200, JSON


def _move(action: str, case_id: str, referral_id: str, body: dict[str, Any] | None):
    referral, viewer = _referrals().move(caller(), case_id, referral_id, action, body or {})
    return referral_out(referral, viewer), 200, JSON


def submit(case_id: str, referral_id: str):
    return _move("submit", case_id, referral_id, None)


def accept(case_id: str, referral_id: str):
    return _move("accept", case_id, referral_id, None)


def decline(case_id: str, referral_id: str, body: dict[str, Any]):
    return _move("decline", case_id, referral_id, body)


def request_info(case_id: str, referral_id: str, body: dict[str, Any]):
    return _move("request_info", case_id, referral_id, body)


def answer_info(case_id: str, referral_id: str, body: dict[str, Any]):
    return _move("answer_info", case_id, referral_id, body)


def close(case_id: str, referral_id: str):
    return _move("close", case_id, referral_id, None)


# --- the guided conversation ----------------------------------------------------------------------
def start_conversation(case_id: str):
    return _conversations().start(caller(), case_id), 201, JSON


def get_conversation(conversation_id: str):
    return _conversations().get(caller(), conversation_id), 200, JSON


def answer_conversation(conversation_id: str, body: dict[str, Any]):
    return _conversations().answer(caller(), conversation_id, body["step"], body["answer"]), 200, JSON


def back_conversation(conversation_id: str, body: dict[str, Any]):
    return _conversations().back(caller(), conversation_id, body["step"]), 200, JSON


# --- subject access (chassis.subject_access): what referrals holds about one person ---------------
def _export_sources() -> list[Source]:
    return [
        Source("referrals", "referral", "referral_id", "created_at", can_see=can_see_referral,
               author_fields=("referrer.person_id",), about_fields=("subject_person_id",)),
        # the guided conversation is a staff member's working draft of a referral
        Source("conversations", "referral conversation", "conversation_id", "started_at",
               can_see=lambda doc, person_id, role: role in STAFF_CASE_ROLES, withheld_as="staff only"),
    ]


def export_person(person_id: str):
    return subject_access.export_person(person_id, _export_sources())
