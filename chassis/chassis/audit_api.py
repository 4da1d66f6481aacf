"""``GET /audit``: one handler every service's contract points at (``chassis.audit_api.search``).

Who may read a service's audit trail, always within their own council only:

| caller | what they get |
| --- | --- |
| a person with the council role ``council_admin`` | any record of their council (by case, record or actor) |
| a person with the case role ``manager`` on a case | the records of the cases they manage |
| anyone else (family, social workers, machines, the gateway actor, operators) | 404 |

Refusals answer 404, never 403, so that the trail does not reveal which cases
exist. Every look at the trail is itself audited (action ``audit.read``),
after the answer is gathered, so it never counts itself. There is no
operation that changes or deletes an audit record: the contracts declare
only GET on ``/audit`` and every other method answers 405.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .audit import AuditTrail
from .identity import Identity
from .problems import InvalidInput, NotFound
from .web import caller, resource

AUDIT_ROLE = "council_admin"
AUDIT_CASE_ROLE = "manager"
NOT_YOURS = "There is no such audit trail, or it is not yours to read."
MAX_LIMIT = 500

_FIELDS = ("service", "actor", "actor_kind", "council_id", "action", "case_id", "record_id", "outcome",
           "from", "token_id")


def managed_cases(who: Identity) -> list[str]:
    return sorted(case for case, role in who.cases.items() if role == AUDIT_CASE_ROLE)


def scope_for(who: Identity, case_id: str | None, record_id: str | None,
              actor: str | None) -> list[str] | None:
    """The cases the caller may read the trail of (None: the whole council); NotFound when none."""
    if not who.is_person or not who.council_id:
        raise NotFound(NOT_YOURS)
    if who.has_role(AUDIT_ROLE):
        if case_id is None and record_id is None and actor is None:
            raise InvalidInput("Ask about a case_id, a record_id or an actor.")
        return None
    managed = managed_cases(who)
    if not managed:
        raise NotFound(NOT_YOURS)
    if case_id is not None:
        if case_id not in managed:
            raise NotFound(NOT_YOURS)
        return [case_id]
    if record_id is None:
        raise InvalidInput("Ask about a case_id or a record_id.")
    return managed


def shown(record: dict[str, Any]) -> dict[str, Any]:
    at = record.get("at")
    out: dict[str, Any] = {"at": at.isoformat() if isinstance(at, datetime) else str(at)}
    for name in _FIELDS:
        value = record.get(name)
        out[name] = None if value is None else str(value)
    return out


def search(case_id: str | None = None, record_id: str | None = None, actor: str | None = None,
           limit: int = 100):
    """Who did what to this case or record, newest first."""
    who = caller()
    trail: AuditTrail = resource("audit")
    try:
        cases = scope_for(who, case_id, record_id, actor)
    except NotFound:
        trail.record(who, "audit.read", case_id=case_id, record_id=record_id, outcome="not-found")
        raise
    found = trail.search(who.council_id or "", case_id=case_id, record_id=record_id, actor=actor,
                         case_ids=cases, limit=max(1, min(limit, MAX_LIMIT)))
    trail.record(who, "audit.read", case_id=case_id, record_id=record_id)
    return {"service": trail.service, "items": [shown(r) for r in found]}, 200, {"Content-Type": "application/json"}
