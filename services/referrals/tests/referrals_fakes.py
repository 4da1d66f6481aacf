"""Test doubles for the referrals' domain: a store that keeps everything in dicts, an audit trail that lists."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from chassis.identity import Identity
from chassis.problems import Conflict
from referrals.domain import AbstractReferralStore, Viewer, can_see

COUNCIL, OTHER_COUNCIL, CASE = "council-a", "council-b", "case-1"
# who is on case-1, and how
ROLES = {"sw": "social_worker", "mgr": "manager", "mum": "parent", "dad": "parent", "gran": "carer",
         "kid": "child", "yp": "young_person"}


class FakeStore(AbstractReferralStore):
    def __init__(self):
        self.referrals: dict[str, dict[str, Any]] = {}
        self.settings: dict[str, dict[str, Any]] = {}
        self.people: dict[tuple[str, str], dict[str, str]] = {}
        self.conversations: dict[str, dict[str, Any]] = {}
        self.events: list[tuple[str, str, dict, dict]] = []

    def add_referral(self, referral):
        if referral["referral_id"] in self.referrals:
            return False
        self.referrals[referral["referral_id"]] = copy.deepcopy(referral)
        return True

    def raw_referral(self, council_id, referral_id):
        r = self.referrals.get(referral_id)
        return copy.deepcopy(r) if r and r["council_id"] == council_id else None

    def _visible(self, viewer: Viewer, case_id: str):
        return [copy.deepcopy(r) for r in self.referrals.values()
                if r["council_id"] == viewer.council_id and r["case_id"] == case_id
                and can_see(r, viewer.person_id, viewer.role)]

    def visible_referrals(self, viewer, case_id, limit):
        return sorted(self._visible(viewer, case_id), key=lambda r: (r["created_at"], r["referral_id"]),
                      reverse=True)[:limit]

    def visible_referral(self, viewer, case_id, referral_id):
        return next((r for r in self._visible(viewer, case_id) if r["referral_id"] == referral_id), None)

    def replace_referral(self, viewer, referral, expected_version, event):
        current = self.referrals.get(referral["referral_id"])
        if current is None or current["version"] != expected_version:
            raise Conflict("changed meanwhile")
        updated = {**copy.deepcopy(referral), "version": expected_version + 1}
        self.referrals[referral["referral_id"]] = updated
        if event is not None:
            self.events.append((viewer.council_id, *event))
        return copy.deepcopy(updated)

    def council_settings(self, council_id):
        return copy.deepcopy(self.settings.get(council_id, {}))

    def save_setting(self, council_id, key, value, by, at):
        self.settings.setdefault(council_id, {})[key] = copy.deepcopy(value)

    def case_people(self, council_id, case_id):
        return dict(self.people.get((council_id, case_id), {}))

    def add_conversation(self, conversation):
        self.conversations[conversation["conversation_id"]] = copy.deepcopy(conversation)

    def conversation(self, council_id, person_id, conversation_id):
        c = self.conversations.get(conversation_id)
        if c and c["council_id"] == council_id and c["owner"]["person_id"] == person_id:
            return copy.deepcopy(c)
        return None

    def save_conversation(self, conversation, expected_step):
        current = self.conversations.get(conversation["conversation_id"])
        if current is None or current["step"] != expected_step:
            return False
        self.conversations[conversation["conversation_id"]] = copy.deepcopy(conversation)
        return True


class FakeAudit:
    def __init__(self):
        self.records: list[dict[str, Any]] = []

    def record(self, who, action, *, case_id=None, record_id=None, outcome="ok", session=None):
        self.records.append({"actor": who.subject, "action": action, "case_id": case_id,
                             "record_id": record_id, "outcome": outcome})


class Clock:
    def __init__(self):
        self.now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    def __call__(self):
        self.now += timedelta(seconds=1)
        return self.now


def identity(person_id: str, cases: dict[str, str] | None = None, council: str = COUNCIL,
             roles: tuple[str, ...] = ()) -> Identity:
    if cases is None:
        cases = {CASE: ROLES[person_id]} if person_id in ROLES else {}
    staff = any(r in ("social_worker", "manager") for r in cases.values()) or "council_admin" in roles
    if person_id == "mgr" and not roles:
        roles = ("manager",)
    return Identity(subject=person_id, actor="person", council_id=council,
                    audience="staff" if staff else "families", roles=frozenset(roles), cases=cases,
                    client_ip="10.0.0.9")


def form(**overrides) -> dict[str, Any]:
    body = {"subject_person_id": "kid", "service": "CAMHS", "reasons": "Low mood for several months.",
            "concerns": "Not sleeping; missing school.", "urgency": "soon", "parents_informed": True,
            "parents_consented": False, "no_consent_reason": "Mum is worried about stigma.",
            "attachments": ["doc-1", "doc-2"]}
    body.update(overrides)
    return body


def comparable(referral: dict[str, Any]) -> dict[str, Any]:
    """A referral without its ids and timestamps: what the form and the conversation must agree on."""
    out = {k: v for k, v in referral.items() if k not in ("referral_id", "created_at", "updated_at")}
    out["history"] = [{k: v for k, v in h.items() if k != "at"} for h in referral["history"]]
    return out
