"""The referrals' rules in plain Python: who sees a referral, what a valid one is, its lifecycle.

No pymongo, nameko or flask here. The store (``AbstractReferralStore``) applies
``can_see`` as a database query; the integration tests hold the two to the
same answers. The form (``Referrals.create_referral``) and the guided
conversation (``referrals.conversation``) make a referral through the same
function.
"""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from chassis.audience import can_see as audience_can_see
from chassis.audience import case_role_of
from chassis.identity import FAMILY_CASE_ROLES, STAFF_CASE_ROLES, Identity
from chassis.problems import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    Unprocessable,
)

NOT_FOUND = "There is no such case or referral, or it is not yours to see."
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

DEFAULT_SERVICES = ("Early Help", "CAMHS", "Housing", "Domestic abuse support", "SEND", "Youth services")
MAX_SERVICES = 50
MAX_SERVICE_NAME = 100
URGENCIES = ("routine", "soon", "urgent")
STATUSES = ("draft", "submitted", "info_requested", "accepted", "declined", "closed")
AUDIENCE_KINDS = ("case", "staff", "named")
MAX_TEXT = 4000
MAX_ATTACHMENTS = 20
MAX_HISTORY = 500

# the referral as the form sends it (and as the conversation collects it)
FIELDS = ("subject_person_id", "service", "reasons", "concerns", "urgency", "parents_informed",
          "parents_consented", "no_consent_reason", "attachments")
REQUIRED_FIELDS = ("subject_person_id", "service", "reasons", "urgency", "parents_informed", "parents_consented")
FIELD_LABELS = {
    "subject_person_id": "Who it is about",
    "service": "Service",
    "reasons": "Reasons",
    "concerns": "Concerns",
    "urgency": "Urgency",
    "parents_informed": "Parents know about it",
    "parents_consented": "Parents consented",
    "no_consent_reason": "Why parents did not consent",
    "attachments": "Attached documents",
}

T = TypeVar("T")


@dataclass(frozen=True)
class Viewer:
    """A person looking at one case: who they are, their council, their role on it, their council roles."""

    person_id: str
    council_id: str
    role: str
    council_roles: frozenset[str] = frozenset()

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_CASE_ROLES

    @property
    def is_family(self) -> bool:
        return self.role in FAMILY_CASE_ROLES

    @property
    def is_receiving_team(self) -> bool:
        """Simplification: the receiving team is a manager on the case, or staff on it with the council role manager."""
        return self.role == "manager" or (self.is_staff and "manager" in self.council_roles)

    def stamp(self) -> dict[str, str]:
        return {"person_id": self.person_id, "role": self.role}


def viewer_on(who: Identity, case_id: str) -> Viewer:
    """The caller as a viewer of ``case_id``; 404 when they hold no role on it (never reveal it exists)."""
    role = case_role_of(who, case_id, NOT_FOUND)
    return Viewer(person_id=who.subject, council_id=who.council_id, role=role, council_roles=who.roles)


def staff_on(who: Identity, case_id: str) -> Viewer:
    viewer = viewer_on(who, case_id)
    if not viewer.is_staff:
        raise Forbidden("Only staff on the case make and move referrals.")
    return viewer


# --- the visibility rule --------------------------------------------------------------------------
def can_see(referral: dict[str, Any], person_id: str, role: str | None) -> bool:
    """Whether a person with ``role`` on the referral's case sees it.

    The referrer always sees theirs. Staff on the case see every referral
    except where they are excluded. A family-side member sees audience "case"
    unless excluded, "named" only when listed and not excluded, never "staff"
    (the default: families see a referral only once staff share it).
    """
    return audience_can_see(referral["audience"], person_id, role, (referral.get("referrer") or {}).get("person_id"))


def normalise_audience(raw: dict[str, Any] | None) -> dict[str, Any]:
    raw = raw or {"kind": "staff"}
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


# --- what a valid referral is -------------------------------------------------------------------
def normalise_services(services: list[str]) -> list[str]:
    """A council's service list: trimmed, non-empty, unique (case-insensitively), at most 50."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in services:
        name = " ".join(str(raw).split())
        if not name or len(name) > MAX_SERVICE_NAME:
            raise InvalidInput(f"A service name has 1 to {MAX_SERVICE_NAME} characters.")
        if name.lower() in seen:
            raise InvalidInput(f"The service {name!r} is listed twice.")
        seen.add(name.lower())
        out.append(name)
    if not out or len(out) > MAX_SERVICES:
        raise InvalidInput(f"A council lists 1 to {MAX_SERVICES} services.")
    return out


def _text(value: Any, name: str, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{FIELD_LABELS[name]} must be text.")
    value = value.strip()
    if required and not value:
        raise Unprocessable(f"{FIELD_LABELS[name]} cannot be empty.")
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{FIELD_LABELS[name]} has at most {MAX_TEXT} characters.")
    return value


def validate_referral_fields(data: dict[str, Any], services: list[str], family: dict[str, str]) -> dict[str, Any]:
    """The referral's own fields, checked and normalised; ``family`` is the case's family side {person: role}.

    Raises InvalidInput (400) for a malformed value and Unprocessable (422) for a well-formed one
    the rules refuse (a person not on the case, a service the council does not list, consent without
    a reason, ...).
    """
    unknown = set(data) - set(FIELDS)
    if unknown:
        raise InvalidInput(f"Unknown fields: {', '.join(sorted(unknown))}.")
    missing = [f for f in REQUIRED_FIELDS if data.get(f) is None]
    if missing:
        raise Unprocessable("Missing: " + ", ".join(FIELD_LABELS[f].lower() for f in missing) + ".")
    subject = data["subject_person_id"]
    if not isinstance(subject, str) or not ID_PATTERN.match(subject):
        raise InvalidInput("subject_person_id is not a person id.")
    if subject not in family:
        raise Unprocessable(f"{subject} is not a child or family member on this case.")
    service = data["service"]
    if service not in services:
        raise Unprocessable(f"{service!r} is not one of the council's services: {', '.join(services)}.")
    if data["urgency"] not in URGENCIES:
        raise InvalidInput("Urgency is routine, soon or urgent.")
    informed, consented = data["parents_informed"], data["parents_consented"]
    if not isinstance(informed, bool) or not isinstance(consented, bool):
        raise InvalidInput("parents_informed and parents_consented are true or false.")
    if consented and not informed:
        raise Unprocessable("Parents cannot have consented to a referral they do not know about.")
    reason = _text(data.get("no_consent_reason"), "no_consent_reason", required=not consented)
    attachments = data.get("attachments") or []
    if not isinstance(attachments, list) or len(attachments) > MAX_ATTACHMENTS or \
            not all(isinstance(a, str) and ID_PATTERN.match(a) for a in attachments):
        raise InvalidInput(f"attachments is a list of at most {MAX_ATTACHMENTS} document ids.")
    return {
        "subject_person_id": subject,
        "service": service,
        "reasons": _text(data["reasons"], "reasons", required=True),
        "concerns": _text(data.get("concerns"), "concerns", required=False),
        "urgency": data["urgency"],
        "parents_informed": informed,
        "parents_consented": consented,
        "no_consent_reason": None if consented else reason,
        "attachments": list(dict.fromkeys(attachments)),
    }


# --- the lifecycle ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Transition:
    action: str
    sources: frozenset[str]
    target: str
    who: str  # staff | receiving_team | referrer | referrer_or_receiving_team
    needs: str | None = None  # the body field this action requires


TRANSITIONS = {t.action: t for t in (
    Transition("submit", frozenset({"draft"}), "submitted", "staff"),
    Transition("accept", frozenset({"submitted"}), "accepted", "receiving_team"),
    Transition("decline", frozenset({"submitted"}), "declined", "receiving_team", needs="reason"),
    Transition("request_info", frozenset({"submitted"}), "info_requested", "receiving_team", needs="question"),
    Transition("answer_info", frozenset({"info_requested"}), "submitted", "referrer", needs="answer"),
    Transition("close", frozenset({"accepted", "declined"}), "closed", "referrer_or_receiving_team"),
)}

STATUS_WORDS = {
    "submitted": "submitted", "accepted": "accepted", "declined": "declined",
    "info_requested": "waiting for more information", "closed": "closed",
}


def check_may(transition: Transition, referral: dict[str, Any], viewer: Viewer) -> None:
    """403 when this viewer may not take this action; 409 when the referral is not in a state it applies to."""
    is_referrer = referral["referrer"]["person_id"] == viewer.person_id
    allowed = {
        "staff": viewer.is_staff,
        "receiving_team": viewer.is_receiving_team,
        "referrer": is_referrer and viewer.is_staff,
        "referrer_or_receiving_team": viewer.is_receiving_team or (is_referrer and viewer.is_staff),
    }[transition.who]
    if not allowed:
        raise Forbidden({
            "staff": "Only staff on the case submit referrals.",
            "receiving_team": "Only the receiving team (a manager) accepts, declines or asks for more information.",
            "referrer": "Only the person who made the referral answers a request for more information.",
            "referrer_or_receiving_team": "Only the referrer or the receiving team closes a referral.",
        }[transition.who])
    if referral["status"] not in transition.sources:
        raise Conflict(f"A referral that is {referral['status']} cannot be moved by {transition.action}.")


def apply_transition(referral: dict[str, Any], transition: Transition, viewer: Viewer, body: dict[str, Any],
                     now: datetime) -> dict[str, Any]:
    """The referral after ``transition`` (a new dict), with its history entry."""
    note = body.get(transition.needs) if transition.needs else body.get("note")
    if note is not None:
        note = note.strip() if isinstance(note, str) else note
        if not isinstance(note, str) or len(note) > MAX_TEXT:
            raise InvalidInput(f"The note is text of at most {MAX_TEXT} characters.")
    if transition.needs and not note:
        raise Unprocessable(f"A {transition.action.replace('_', ' ')} needs a {transition.needs}.")
    if len(referral["history"]) >= MAX_HISTORY:
        raise Conflict(f"A referral keeps at most {MAX_HISTORY} changes.")
    updated = dict(referral)
    updated["status"] = transition.target
    updated["updated_at"] = now
    updated["history"] = [*referral["history"], {
        "at": now, "by": viewer.stamp(), "action": transition.action,
        "from_status": referral["status"], "to_status": transition.target, "note": note or None}]
    if transition.action == "request_info":
        updated["info_requests"] = [*referral["info_requests"], {
            "question": note, "asked_by": viewer.stamp(), "asked_at": now,
            "answer": None, "answered_by": None, "answered_at": None}]
    elif transition.action == "answer_info":
        requests = [dict(r) for r in referral["info_requests"]]
        requests[-1].update(answer=note, answered_by=viewer.stamp(), answered_at=now)
        updated["info_requests"] = requests
    elif transition.action in ("accept", "decline"):
        updated["decision"] = {"outcome": transition.target, "reason": note or None, "by": viewer.stamp(), "at": now}
    return updated


def referral_event(referral: dict[str, Any], transition: Transition, now: datetime) -> tuple[str, dict, dict]:
    """(event type, data, story) for a status change; the story has the referral's audience."""
    service = referral["service"]
    data = {"referral_id": referral["referral_id"], "case_id": referral["case_id"],
            "subject_person_id": referral["subject_person_id"], "service": service,
            "urgency": referral["urgency"], "status": transition.target}
    if transition.action == "submit":
        event_type = "referral_submitted"
        title = f"Referral to {service} submitted ({referral['urgency']})"
        body = ""
    else:
        event_type = "referral_status_changed"
        data["previous_status"] = referral["history"][-1]["from_status"]
        title = {
            "accept": f"Referral to {service} accepted",
            "decline": f"Referral to {service} declined",
            "request_info": f"More information asked for the referral to {service}",
            "answer_info": f"More information given for the referral to {service}",
            "close": f"Referral to {service} closed",
        }[transition.action]
        # a decline's reason is part of the story; every other note stays on the referral
        body = (referral["history"][-1]["note"] or "") if transition.action == "decline" else ""
    story = {"case_id": referral["case_id"], "kind": "referral", "title": title[:200],
             "occurred_at": now.isoformat(), "audience": dict(referral["audience"])}
    if body:
        story["body"] = body
    return event_type, data, story


def parse_time(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def utcnow() -> datetime:
    return parse_time(datetime.now(UTC))


def new_id() -> str:
    return uuid.uuid4().hex


# --- ports --------------------------------------------------------------------------------------
class AbstractReferralStore(ABC):
    """The repository. Every read is scoped by the council, the case and the visibility rule."""

    # referrals
    @abstractmethod
    def add_referral(self, referral: dict[str, Any]) -> bool:
        """False when a referral with this id exists already (a retried conversation confirmation)."""

    @abstractmethod
    def raw_referral(self, council_id: str, referral_id: str) -> dict[str, Any] | None:
        """A referral by id within a council, without visibility (only to replay a made referral)."""

    @abstractmethod
    def visible_referrals(self, viewer: Viewer, case_id: str, limit: int) -> list[dict[str, Any]]: ...

    @abstractmethod
    def visible_referral(self, viewer: Viewer, case_id: str, referral_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def replace_referral(self, viewer: Viewer, referral: dict[str, Any], expected_version: int,
                         event: tuple[str, dict, dict] | None) -> dict[str, Any]:
        """Write the new version (``version`` + 1) and its event together; Conflict when it changed meanwhile."""

    # council settings
    @abstractmethod
    def council_settings(self, council_id: str) -> dict[str, Any]:
        """{"services": [...] | None, "conversation_script": {...} | None, ...}."""

    @abstractmethod
    def save_setting(self, council_id: str, key: str, value: Any, by: str, at: datetime) -> None: ...

    # the case directory's memberships, as the worker projects them from events
    @abstractmethod
    def case_people(self, council_id: str, case_id: str) -> dict[str, str]:
        """{person_id: role} of everyone currently on the case."""

    # conversations
    @abstractmethod
    def add_conversation(self, conversation: dict[str, Any]) -> None: ...

    @abstractmethod
    def conversation(self, council_id: str, person_id: str, conversation_id: str) -> dict[str, Any] | None:
        """The caller's own conversation, or None."""

    @abstractmethod
    def save_conversation(self, conversation: dict[str, Any], expected_step: int) -> bool:
        """Compare-and-set on ``step``: False when another request moved it first."""


class Audit(Protocol):
    def record(self, who: Identity, action: str, *, case_id: str | None = None,
               record_id: str | None = None, outcome: str = "ok") -> Any: ...


def family_side(people: dict[str, str]) -> dict[str, str]:
    return {p: r for p, r in people.items() if r in FAMILY_CASE_ROLES}


# --- the use cases --------------------------------------------------------------------------------
class Referrals:
    """The referrals' operations; every one of them, allowed or not, leaves an audit record."""

    def __init__(self, store: AbstractReferralStore, audit: Audit, clock: Callable[[], datetime] = utcnow):
        self.store = store
        self.audit = audit
        self.clock = clock

    def audited(self, who: Identity, action: str, case_id: str | None, record_id: str | None,
                fn: Callable[[], T]) -> T:
        try:
            result = fn()
        except DomainError as exc:
            self.audit.record(who, action, case_id=case_id, record_id=record_id, outcome=exc.slug)
            raise
        made = result[0] if isinstance(result, tuple) else result
        if record_id is None and isinstance(made, dict):
            record_id = made.get("referral_id") or made.get("conversation_id")
        self.audit.record(who, action, case_id=case_id, record_id=record_id)
        return result

    # --- settings ------------------------------------------------------------------------------
    def services_of(self, council_id: str) -> list[str]:
        return list(self.store.council_settings(council_id).get("services") or DEFAULT_SERVICES)

    def get_services(self, who: Identity) -> list[str]:
        def run():
            council = council_staff_of(who)
            return self.services_of(council)

        return self.audited(who, "referrals.settings.services.read", None, None, run)

    def put_services(self, who: Identity, services: list[str]) -> list[str]:
        def run():
            council = council_admin_of(who)
            cleaned = normalise_services(services)
            self.store.save_setting(council, "services", cleaned, who.subject, self.clock())
            return cleaned

        return self.audited(who, "referrals.settings.services.write", None, None, run)

    # --- the form ---------------------------------------------------------------------------------
    def create_referral(self, who: Identity, case_id: str, data: dict[str, Any],
                        referral_id: str | None = None) -> tuple[dict[str, Any], Viewer]:
        """Make a draft referral: the one function the form and the conversation both call.

        With ``referral_id`` (the conversation's), a retried call returns the referral made the first time.
        """
        def run():
            viewer = staff_on(who, case_id)
            if referral_id is not None:
                made = self.store.raw_referral(viewer.council_id, referral_id)
                if made is not None and made["case_id"] == case_id:
                    return made, viewer
            fields = validate_referral_fields(data, self.services_of(viewer.council_id),
                                              family_side(self.store.case_people(viewer.council_id, case_id)))
            now = self.clock()
            referral = {
                "referral_id": referral_id or new_id(),
                "council_id": viewer.council_id,
                "case_id": case_id,
                **fields,
                "referrer": viewer.stamp(),
                "status": "draft",
                "audience": normalise_audience(None),
                "info_requests": [],
                "decision": None,
                "history": [{"at": now, "by": viewer.stamp(), "action": "create", "from_status": None,
                             "to_status": "draft", "note": None}],
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
            if not self.store.add_referral(referral):
                raise Conflict("This referral was made already.")
            return referral, viewer

        return self.audited(who, "referrals.referral.create", case_id, referral_id, run)

    def list_referrals(self, who: Identity, case_id: str, limit: int = 100) -> tuple[list[dict[str, Any]], Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            return self.store.visible_referrals(viewer, case_id, limit), viewer

        return self.audited(who, "referrals.referrals.list", case_id, None, run)

    def _visible(self, viewer: Viewer, case_id: str, referral_id: str) -> dict[str, Any]:
        referral = self.store.visible_referral(viewer, case_id, referral_id)
        if referral is None:
            raise NotFound(NOT_FOUND)
        return referral

    def get_referral(self, who: Identity, case_id: str, referral_id: str) -> tuple[dict[str, Any], Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            return self._visible(viewer, case_id, referral_id), viewer

        return self.audited(who, "referrals.referral.read", case_id, referral_id, run)

    def edit_draft(self, who: Identity, case_id: str, referral_id: str,
                   changes: dict[str, Any]) -> tuple[dict[str, Any], Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            referral = self._visible(viewer, case_id, referral_id)
            if not viewer.is_staff:
                raise Forbidden("Only staff on the case change a referral.")
            if referral["status"] != "draft":
                raise Conflict(f"Only a draft can be changed; this referral is {referral['status']}.")
            current = {f: referral[f] for f in FIELDS}
            fields = validate_referral_fields({**current, **changes}, self.services_of(viewer.council_id),
                                              family_side(self.store.case_people(viewer.council_id, case_id)))
            now = self.clock()
            updated = {**referral, **fields, "updated_at": now, "history": [*referral["history"], {
                "at": now, "by": viewer.stamp(), "action": "edit", "from_status": "draft", "to_status": "draft",
                "note": None}]}
            return self.store.replace_referral(viewer, updated, referral["version"], None), viewer

        return self.audited(who, "referrals.referral.edit", case_id, referral_id, run)

    def move(self, who: Identity, case_id: str, referral_id: str, action: str,
             body: dict[str, Any]) -> tuple[dict[str, Any], Viewer]:
        """Take one lifecycle step; the change and its event are written together."""
        def run():
            transition = TRANSITIONS.get(action)
            if transition is None:
                raise NotFound("There is no such action.")
            viewer = viewer_on(who, case_id)
            referral = self._visible(viewer, case_id, referral_id)
            check_may(transition, referral, viewer)
            now = self.clock()
            updated = apply_transition(referral, transition, viewer, body, now)
            event = referral_event(updated, transition, now)
            return self.store.replace_referral(viewer, updated, referral["version"], event), viewer

        return self.audited(who, f"referrals.referral.{action}", case_id, referral_id, run)

    def share(self, who: Identity, case_id: str, referral_id: str,
              audience: dict[str, Any]) -> tuple[dict[str, Any], Viewer]:
        """Staff on the case choose who sees a referral (staff only by default)."""
        def run():
            viewer = viewer_on(who, case_id)
            referral = self._visible(viewer, case_id, referral_id)
            if not viewer.is_staff:
                raise Forbidden("Only staff on the case share a referral.")
            cleaned = normalise_audience(audience)
            if referral["referrer"]["person_id"] in cleaned["exclude"]:
                raise Unprocessable("The referrer cannot be excluded from their own referral.")
            now = self.clock()
            updated = {**referral, "audience": cleaned, "updated_at": now, "history": [*referral["history"], {
                "at": now, "by": viewer.stamp(), "action": "share", "from_status": referral["status"],
                "to_status": referral["status"], "note": f"audience: {cleaned['kind']}"}]}
            return self.store.replace_referral(viewer, updated, referral["version"], None), viewer

        return self.audited(who, "referrals.referral.share", case_id, referral_id, run)


def council_staff_of(who: Identity) -> str:
    if not who.is_person or not who.council_id or who.audience != "staff":
        raise Forbidden("Only council staff read the referral settings.")
    return who.council_id


def council_admin_of(who: Identity) -> str:
    if not who.is_person or not who.council_id or not who.has_role("council_admin"):
        raise Forbidden("Only a council administrator changes the referral settings.")
    return who.council_id
