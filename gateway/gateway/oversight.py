"""Oversight across services: "who viewed this case / record" and the subject access export.

``GET /api/audit`` asks the cases service and every service of a published
tool (``runs_at`` in the catalogue, switched on for the council or not: a
switched-off tool's trail still matters) for ``GET /audit``, concurrently,
each with an internal token carrying the caller's identity; each service
decides on its own who may read its trail (``chassis.audit_api``) and the
gateway merges the answers newest first.

``POST /api/councils/{council_id}/subject-access/{person_id}`` (the council's
``council_admin`` only) collects ``GET /export/people/{person_id}`` from the
same services, with the person's case roles signed into the token
(``chassis.subject_access``), and answers a zip: ``summary.txt`` in plain
English, one JSON file per service, and ``withheld.json`` for the staff
reviewer (ids, kinds, dates and reasons only). Each service audits the export.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from connexion import context as ctx

from chassis.discovery import ServiceNotFound
from chassis.problems import InvalidInput, NotFound, ServiceUnavailable

from .access import identity_for
from .api import _gateway, _principal
from .directory import UpstreamError, gateway_claims

log = logging.getLogger(__name__)

AUDIT_ROLE = "council_admin"
EXPORT_ROLE = "council_admin"
NOT_YOURS = "There is no such audit trail, or it is not yours to read."
NO_SUCH_PERSON = "There is no such person here, or exporting their records is not yours to do."
_JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Target:
    name: str  # the service (or vendor tool id): the internal token's audience
    base: str
    label: str


async def _targets(gw) -> list[Target]:
    """The cases service and every published tool's service, each once."""
    found: dict[str, Target] = {}
    try:
        found["cases"] = Target("cases", gw.discovery.resolve("cases"), "Cases and people")
        catalogue = gw.discovery.resolve("catalogue")
    except (ServiceNotFound, LookupError) as exc:
        raise ServiceUnavailable("The platform cannot be reached right now; try again in a moment.") from exc
    headers = {"Authorization": "Bearer " + gw.tokens.mint("catalogue", gateway_claims(None)),
               "Accept": "application/json"}
    try:
        async with gw.http.get(catalogue + "/tools", headers=headers) as resp:
            if resp.status != 200:
                raise ServiceUnavailable("The catalogue cannot be read right now; try again in a moment.")
            tools = (await resp.json(content_type=None)).get("items", [])
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ServiceUnavailable("The catalogue cannot be reached right now; try again in a moment.") from exc
    for tool in tools:
        runs_at = tool.get("runs_at") or {}
        service, url = runs_at.get("service"), (runs_at.get("url") or "").rstrip("/")
        name = service or tool["tool_id"]
        if name in found:
            continue
        try:
            base = url or gw.discovery.resolve(service)
        except (ServiceNotFound, LookupError):
            log.warning("audit fan-out: %s is not known to discovery", name)
            base = ""
        found[name] = Target(name, base, str(tool.get("name") or tool["tool_id"]))
    return list(found.values())


async def _fan_out(gw, targets: list[Target], path: str, claims: dict[str, Any]
                   ) -> dict[str, tuple[int, Any]]:
    """{service: (status, JSON body or None)} from every target, concurrently; 0 when unreachable."""

    async def one(target: Target) -> tuple[str, tuple[int, Any]]:
        if not target.base:
            return target.name, (0, None)
        headers = {"Authorization": "Bearer " + gw.tokens.mint(target.name, claims), "Accept": "application/json"}
        try:
            async with gw.http.get(target.base + path, headers=headers) as resp:
                body = await resp.json(content_type=None) if resp.status < 500 else None
                return target.name, (resp.status, body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("fan-out to %s failed: %s", target.name, type(exc).__name__)
            return target.name, (0, None)

    return dict(await asyncio.gather(*(one(t) for t in targets)))


async def _caller_identity():
    gw = _gateway()
    principal = _principal()
    if principal.council_id is None or principal.is_machine:
        raise NotFound(NOT_YOURS)
    cases = await gw.access.memberships(principal)
    client = ctx.scope.get("client")
    return gw, principal, identity_for(principal, cases, client[0] if client else None)


# --- GET /api/audit -----------------------------------------------------------------------------------
async def audit(case_id: str | None = None, record_id: str | None = None, actor: str | None = None,
                limit: int = 100):
    """Who did what to a case or record, across every service, newest first, in one call."""
    if case_id is None and record_id is None and actor is None:
        raise InvalidInput("Ask about a case_id, a record_id or an actor.")
    gw, principal, identity = await _caller_identity()
    if AUDIT_ROLE not in principal.roles and "manager" not in identity.cases.values():
        raise NotFound(NOT_YOURS)  # each service decides too; this spares them the question
    query = {k: v for k, v in {"case_id": case_id, "record_id": record_id, "actor": actor}.items() if v}
    query["limit"] = limit
    targets = await _targets(gw)
    answers = await _fan_out(gw, targets, "/audit?" + urlencode(query), identity.to_claims())
    items: list[dict[str, Any]] = []
    answered, unavailable = [], []
    for name, (status, body) in sorted(answers.items()):
        if status == 200 and isinstance(body, dict):
            answered.append(name)
            items.extend(body.get("items", []))
        elif status == 400:
            raise InvalidInput((body or {}).get("detail") or "That is not a question the audit trail answers.")
        elif status not in (404, 405):  # 405: a vendor tool without an audit trail of its own
            unavailable.append(name)
    if not answered:
        if unavailable and len(unavailable) == len(answers):
            raise ServiceUnavailable("The audit trails cannot be reached right now; try again in a moment.")
        raise NotFound(NOT_YOURS)
    items.sort(key=lambda i: i.get("at") or "", reverse=True)
    return {"items": items[:limit], "services": answered, "unavailable": unavailable}, 200, _JSON


# --- POST /api/councils/{council_id}/subject-access/{person_id} ----------------------------------------
async def subject_access(council_id: str, person_id: str):
    """A zip of everything held about one person across every tool, for a council administrator."""
    gw, principal, identity = await _caller_identity()
    if principal.council_id != council_id or EXPORT_ROLE not in principal.roles:
        raise NotFound(NO_SUCH_PERSON)
    try:
        their_cases = await gw.access.cases.memberships(council_id, person_id)
    except UpstreamError as exc:
        raise ServiceUnavailable("The person's cases cannot be looked up right now; try again.") from exc
    claims = {**identity.to_claims(), "subject_access": {"person_id": person_id, "cases": their_cases}}
    targets = await _targets(gw)
    answers = await _fan_out(gw, targets, f"/export/people/{quote(person_id, safe='')}", claims)
    cases_export = answers.get("cases", (0, None))
    if cases_export[0] != 200:
        if cases_export[0] == 404:
            raise NotFound(NO_SUCH_PERSON)
        raise ServiceUnavailable("The case directory cannot be reached right now; try again in a moment.")
    people = [i for i in cases_export[1].get("items", []) if i.get("kind") == "person"]
    if not people:
        raise NotFound(NO_SUCH_PERSON)
    missing = [t.label for t in targets if answers.get(t.name, (0, None))[0] != 200]
    exports = {t.name: answers[t.name][1] for t in targets if answers.get(t.name, (0, None))[0] == 200}
    labels = {t.name: t.label for t in targets}
    data = build_zip(person_id, council_id, people[0].get("record") or {}, exports, labels, missing,
                     principal.person_id)
    filename = f"subject-access-{council_id}-{person_id}.zip"
    return data, 200, {"Content-Type": "application/zip",
                       "Content-Disposition": f'attachment; filename="{quote(filename)}"',
                       "Cache-Control": "no-store"}


def _title(item: dict[str, Any]) -> str:
    record = item.get("record") or {}
    for name in ("title", "subject", "display_name", "service", "filename", "role"):
        value = record.get(name)
        if isinstance(value, str) and value:
            return value[:120]
    versions = record.get("versions")
    if isinstance(versions, list) and versions and isinstance(versions[-1], dict):
        return str(versions[-1].get("filename") or versions[-1].get("label") or "")[:120]
    return ""


def summary_text(person_id: str, council_id: str, person: dict[str, Any], exports: dict[str, dict],
                 labels: dict[str, str], missing: list[str], made_by: str, made_at: datetime) -> str:
    name = person.get("display_name") or person_id
    lines = [
        f"Subject access export for {name} (person id {person_id}), council {council_id}.",
        f"Made on {made_at.strftime('%d %B %Y at %H:%M')} UTC by {made_by}.",
        "",
        "This export holds what Family Story keeps about this person, as they may see it: what they wrote,",
        "what is about them and what was shared with them. Each tool's records are in its own JSON file.",
        "",
    ]
    withheld = sum(len(e.get("withheld", [])) for e in exports.values())
    for service, export in sorted(exports.items()):
        items = export.get("items", [])
        lines.append(f"{labels.get(service, service)} ({service}.json): {len(items)} record(s).")
        for item in items[:500]:
            title = _title(item)
            date = (item.get("date") or "")[:10] or "no date"
            lines.append(f"  - {date}  {item.get('kind')}" + (f": {title}" if title else ""))
        lines.append("")
    if missing:
        lines += ["Not included, because these tools did not answer in time: " + ", ".join(missing) + ".",
                  "Make the export again later to include them.", ""]
    lines += [
        f"FOR THE STAFF REVIEWER: {withheld} record(s) on this person's cases are withheld from them",
        "(they were excluded, the record is for staff only, or it is about other people). They are listed",
        "in withheld.json by id, kind, date and reason only, so that you can check the decision.",
        "Remove withheld.json before giving this export to the person.",
    ]
    return "\n".join(lines) + "\n"


def build_zip(person_id: str, council_id: str, person: dict[str, Any], exports: dict[str, dict],
              labels: dict[str, str], missing: list[str], made_by: str) -> bytes:
    made_at = datetime.now(UTC)
    buffer = io.BytesIO()
    withheld = [{**w, "service": service} for service, export in sorted(exports.items())
                for w in export.get("withheld", [])]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("summary.txt", summary_text(person_id, council_id, person, exports, labels, missing,
                                                     made_by, made_at))
        for service, export in sorted(exports.items()):
            shown = {k: v for k, v in export.items() if k != "withheld"}
            archive.writestr(f"{service}.json", json.dumps(shown, indent=2, ensure_ascii=False))
        archive.writestr("withheld.json", json.dumps(
            {"note": "For the staff reviewer only: not to be given to the person.", "person_id": person_id,
             "items": withheld}, indent=2))
    return buffer.getvalue()
