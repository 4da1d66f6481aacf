"""``GET /export/people/{person_id}``: what one service holds about one person, for a subject access request.

The gateway's ``POST /api/councils/{council_id}/subject-access/{person_id}``
(a council administrator only) calls this on every service with an internal
token that carries the administrator's identity plus a ``subject_access``
claim: ``{"person_id": ..., "cases": {case_id: role}}`` — the person's case
roles as the cases service knows them, signed by the gateway, so a service
never has to trust a query parameter for whose eyes the export is made.

Each service describes its records as ``Source``s (a collection, how to tell
the author, who the record is about, and the service's own visibility rule)
and answers with ``export_person(person_id, sources)``:

- ``items``: records the person may see as they would see them (records they
  wrote, records about them that are theirs to see, records visible to them
  on their cases), with the audience reduced to its kind: who else was named
  or excluded is other people's data;
- ``withheld``: for the staff reviewer only, the records on the person's
  cases (or about them) that the person may not see, as id, kind, date and
  reason ("excluded", "staff only", "third party", "not published",
  "deleted", "not shared") and nothing else.

Every export is audited (``subject_access.export``, record = the person).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connexion import context as connexion_context
from pymongo.database import Database

from .identity import STAFF_CASE_ROLES, Identity
from .problems import NotFound
from .web import caller, resource

EXPORT_ROLE = "council_admin"
CLAIM = "subject_access"
NOT_YOURS = "There is no such person, or exporting their records is not yours to do."
MAX_RECORDS_PER_SOURCE = 20_000

Doc = dict[str, Any]
Visibility = Callable[[Doc, str, str | None], bool]


@dataclass(frozen=True)
class Subject:
    """The person an export is for, with their roles on their cases."""

    person_id: str
    council_id: str
    cases: dict[str, str]


@dataclass(frozen=True)
class Source:
    """One kind of record a service keeps, described for the export.

    ``can_see(doc, person_id, role)`` is the service's own visibility rule;
    ``None`` means the record is the person's own (shown when it is about
    them or by them). ``parent`` names a source (by ``kind``) and ``link`` the
    field that points at it: such a record is seen exactly when its parent is.
    ``redact`` removes from a shown record what the person may not see of it.
    """

    collection: str
    kind: str
    id_field: str
    date_field: str
    can_see: Visibility | None = None
    author_fields: tuple[str, ...] = ()
    about_fields: tuple[str, ...] = ()
    case_field: str | None = "case_id"
    parent: str | None = None
    link: str | None = None
    redact: Callable[[Doc, str], Doc] | None = None
    drop: tuple[str, ...] = ()
    withheld_as: str | None = None  # the reason given for every withheld record of this source


@dataclass
class Export:
    items: list[Doc] = field(default_factory=list)
    withheld: list[Doc] = field(default_factory=list)


def subject_of(who: Identity, person_id: str) -> Subject:
    """The export's subject from the gateway-signed claim; NotFound unless a council admin asks for it."""
    info = connexion_context.context.get("token_info") or {}
    claim = (info.get("claims") or {}).get(CLAIM)
    if (not who.is_person or not who.council_id or not who.has_role(EXPORT_ROLE)
            or not isinstance(claim, dict) or claim.get("person_id") != person_id):
        raise NotFound(NOT_YOURS)
    cases = claim.get("cases") or {}
    return Subject(person_id, who.council_id, {str(k): str(v) for k, v in cases.items()})


def value_at(doc: Doc, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def _mentions(value: Any, person_id: str) -> bool:
    if isinstance(value, list):
        return person_id in value
    return value == person_id


def withheld_reason(doc: Doc, person_id: str, role: str | None) -> str:
    """Why a person does not see a record, in one or two words."""
    audience = doc.get("audience") or {}
    if person_id in (audience.get("exclude") or ()):
        return "excluded"
    if doc.get("deleted"):
        return "deleted"
    if role is None:
        return "not shared"
    if audience.get("kind") == "staff" and role not in STAFF_CASE_ROLES:
        return "staff only"
    if audience.get("kind") == "named" and person_id not in (audience.get("people") or ()):
        return "third party"
    if "current_version" in doc and not doc.get("current_version"):
        return "not published"
    return "not shared"


def plain(value: Any) -> Any:
    """JSON-ready: dates as ISO 8601 (UTC), ids and bytes as text."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _shown(source: Source, doc: Doc, person_id: str) -> Doc:
    out = {k: v for k, v in doc.items() if k != "_id" and k not in source.drop}
    out.setdefault(source.id_field, doc["_id"])
    audience = out.get("audience")
    if isinstance(audience, dict):
        out["audience"] = {"kind": audience.get("kind")}  # who else was named or excluded is not theirs
    if source.redact is not None:
        out = source.redact(out, person_id)
    return {"kind": source.kind, "id": str(out[source.id_field]), "date": plain(doc.get(source.date_field)),
            "record": plain(out)}


def collect(db: Database, subject: Subject, sources: list[Source]) -> Export:
    """Everything the sources hold about the subject, split into what they may see and what is withheld."""
    export = Export()
    pid, cases = subject.person_id, subject.cases
    seen_by_kind: dict[str, dict[Any, tuple[bool, str, str | None]]] = {}
    for source in sources:
        mine = [{f: pid} for f in (*source.author_fields, *source.about_fields)]
        scope: list[Doc] = list(mine)
        if source.case_field:
            scope.append({source.case_field: {"$in": sorted(cases)}})
        if source.parent and source.link:
            parents = seen_by_kind.get(source.parent, {})
            scope.append({source.link: {"$in": list(parents)}})
        if not scope:
            continue
        query = {"council_id": subject.council_id, "$or": scope}
        verdicts: dict[Any, tuple[bool, str, str | None]] = {}
        for doc in db[source.collection].find(query).sort([("_id", 1)]).limit(MAX_RECORDS_PER_SOURCE):
            role = cases.get(value_at(doc, source.case_field)) if source.case_field else None
            wrote = any(value_at(doc, f) == pid for f in source.author_fields)
            about = any(_mentions(value_at(doc, f), pid) for f in source.about_fields)
            if source.parent and source.link and doc.get(source.link) in seen_by_kind.get(source.parent, {}):
                visible, reason, _ = seen_by_kind[source.parent][doc[source.link]]
                visible = visible or wrote
            elif source.can_see is None:
                visible, reason = wrote or about, "not shared"
            else:
                visible = wrote or source.can_see(doc, pid, role)
                reason = "" if visible else (source.withheld_as or withheld_reason(doc, pid, role))
            date = plain(doc.get(source.date_field))
            verdicts[doc["_id"]] = (visible, reason, date)
            if visible:
                export.items.append(_shown(source, doc, pid))
            else:
                export.withheld.append({"id": str(doc.get(source.id_field, doc["_id"])), "kind": source.kind, "date": date,
                                        "reason": reason or "not shared"})
        seen_by_kind[source.kind] = verdicts
    return export


def export_person(person_id: str, sources: list[Source]):
    """The handler body of ``GET /export/people/{person_id}`` for a service with ``db`` and ``audit`` resources."""
    who = caller()
    audit = resource("audit")
    try:
        subject = subject_of(who, person_id)
    except NotFound:
        audit.record(who, "subject_access.export", record_id=person_id, outcome="not-found")
        raise
    export = collect(resource("db"), subject, sources)
    audit.record(who, "subject_access.export", record_id=person_id)
    body = {
        "service": audit.service,
        "person_id": person_id,
        "council_id": subject.council_id,
        "generated_at": datetime.now(UTC).isoformat(),
        "items": export.items,
        "withheld": export.withheld,
    }
    return body, 200, {"Content-Type": "application/json"}
