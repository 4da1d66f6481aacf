"""The access matrix: every operation of every contract, through the gateway, as every role, on every
object (own case, another case of the same council, a case of another council).

Pass criteria: 0 unauthorised 2xx (a policy oracle per operation, tests/security/policy.py), 0 leaked
fields (no response, whatever its status, carries the marker of a record the caller may not see), 0
server errors. Adding an operation to a contract without a line in ``policy.COVERED`` fails."""

from __future__ import annotations

import io
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from policy import CASE_QUERY, COVERED, PROXY_ROUTES, SUBJECT, SUBJECT_ACCESS
from secworld import (
    ALL_AUDIENCES,
    OBJECTS,
    PROBE_PERSON,
    PROBE_TOOL,
    VARIANTS,
    Caller,
    Operation,
    Record,
    callers,
    example_of,
    load_operations,
    resolve,
)

from chassis.testing import report

pytestmark = pytest.mark.e2e

# operations that may be under either name while the sign-in work lands (gateway.api -> gateway.signin_api)
RENAMED = {"gateway.api.create_session", "gateway.api.delete_session", "gateway.signin_api.create_session",
           "gateway.signin_api.delete_session"}
SIGN_IN = {"gateway.api.create_session", "gateway.signin_api.create_session"}
SIGN_OUT = {"gateway.api.delete_session", "gateway.signin_api.delete_session"}
RECORD_PARAMS = {"entry_id", "document_id", "version", "thread_id", "message_id", "plan_id", "number", "a", "b",
                 "goal_id", "referral_id", "conversation_id"}


def test_every_contract_operation_is_covered():
    ops = load_operations()
    missing = sorted({op.operation_id for op in ops} - set(COVERED) - PROXY_ROUTES)
    assert not missing, f"operations without a line in tests/security/policy.py COVERED: {missing}"
    stale = sorted(set(COVERED) - {op.operation_id for op in ops} - RENAMED)
    assert not stale, f"COVERED names operations no contract has: {stale}"


@dataclass
class Attempt:
    op: Operation
    caller: Caller
    obj: str
    variant: str
    method: str
    url: str
    kwargs: dict
    allowed: bool
    record: Record | None

    def label(self) -> str:
        return f"{self.caller.role:26} {self.obj}/{self.variant:5} {self.method.upper():6} {self.url}"


def _body(op: Operation, caller: Caller, case_id: str | None, world, planted) -> dict[str, Any]:
    oid = op.operation_id
    if oid in SIGN_IN:
        return {"json": {"login": caller.login or "nobody-at-all"}}
    if oid == "catalogue.api.enable_tool":
        return {"json": {"audiences": ALL_AUDIENCES, "scopes": ["cases:read", "timeline:read", "timeline:write"]}}
    if oid == "cases.api.put_person":
        return {"json": {"display_name": "Matrix Extra", "kind": "family"}}
    if oid == "cases.api.put_member":
        return {"json": {"role": "parent"}}
    if oid == "cases.api.put_case":
        case = next((c for c in world.cases if (c.council_id, c.case_id) == (caller.council_id, case_id)), None)
        return {"json": {"reference": case.reference, "title": case.title} if case else
                {"reference": "MX-1", "title": "Matrix probe case"}}
    if oid == "referrals.api.put_services":
        return {"json": planted.settings["services"]}
    if oid == "catalogue.api.put_sign_in":
        return {"json": planted.settings["sign_in"]}
    if oid == "referrals.api.put_script":
        return {"json": planted.settings["script"]}
    body = op.spec.get("requestBody")
    if not body:
        return {}
    content = resolve(op.doc, body).get("content", {})
    if "application/json" in content:
        return {"json": example_of(op.doc, content["application/json"].get("schema", {}))}
    return {"content": b"matrix probe\n", "headers": {"Content-Type": "application/octet-stream"}}


def build(op: Operation, caller: Caller, obj: str, variant: str, planted, world) -> Attempt | None:
    council, case_id, _ = OBJECTS[obj]
    policy, tool = COVERED[op.operation_id]
    record = planted.find(tool, obj, variant if tool != "referrals-conversation" else "owner") if tool else None
    if tool and record is None:
        return None  # this object has no such record (e.g. no staff-only thread where the case has one worker)
    person_id = SUBJECT if op.operation_id in SUBJECT_ACCESS else PROBE_PERSON
    values = {"case_id": case_id, "council_id": council, "tool_id": PROBE_TOOL, "person_id": person_id,
              "client_id": "matrix-probe-client"}
    if record:
        values.update(record.ids)
    path = op.path
    for param in op.spec["parameters"]:
        param = resolve(op.doc, param)
        if param["in"] != "path":
            continue
        name = param["name"]
        assert name in values, f"{op.operation_id}: no value for the path parameter {name!r}"
        path = path.replace("{" + name + "}", values[name])
    params = {}
    for param in op.spec["parameters"]:
        param = resolve(op.doc, param)
        if param["in"] == "query" and param.get("required"):
            params[param["name"]] = example_of(op.doc, param.get("schema", {}), param["name"])
    if op.operation_id in CASE_QUERY:
        params["case_id"] = case_id
    if op.operation_id == "documents.api.upload_document":
        params["filename"] = "matrix-probe.txt"
    kwargs = {**_body(op, caller, case_id, world, planted), **({"params": params} if params else {})}
    # the request addresses the caller's own council: a path names a case of the caller's council, and
    # record ids of another council's object must find nothing
    effective_council = caller.council_id
    path_council = council if "{council_id}" in op.path else None
    case_named = "{case_id}" in op.path or op.operation_id in CASE_QUERY
    allowed = policy(caller, council=path_council, case_id=case_id if case_named else None,
                     record=record, person_id=person_id if "{person_id}" in op.path else None,
                     effective_council=effective_council)
    if tool is None and not case_named and "{council_id}" not in op.path and obj != "own_case":
        return None  # the object does not enter the request: tried once, under own_case
    return Attempt(op, caller, obj, variant, op.method, op.gateway_prefix + path, kwargs, allowed, record)


def readable(resp) -> str:
    """The answer as text; a zip (the subject access export) with every file in it."""
    if resp.headers.get("content-type", "").startswith("application/zip") and resp.content:
        with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
            return " ".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist())
    return resp.text


def subjects(world):
    """Callers for the subject-access person of each council (what an export may show)."""
    for login in ("parent1.a", "parent.b"):
        yield from (c for c in callers_of(world, login))


def callers_of(world, login):
    from secworld import Caller
    p = world.person(login)
    cases = {c.case_id: c.members[p.person_id] for c in world.cases
             if c.council_id == p.council_id and p.person_id in c.members}
    yield Caller("subject", login, p.person_id, p.council_id, p.kind, tuple(p.roles), cases)


def send(attempt: Attempt, client, sessions) -> Any:
    login = attempt.caller.login
    if attempt.op.operation_id in SIGN_OUT:
        if login is None:
            return client.anonymous().request("DELETE", attempt.url)
        fresh = client.sign_in(login)
        resp = fresh.request("DELETE", attempt.url)
        if resp.is_success:  # signed out: the token works no more, at once
            again = fresh.get("/api/me")
            assert again.status_code == 401, f"{login}: a signed-out session still works ({again.status_code})"
        return resp
    session = client.anonymous() if login is None else sessions(login)
    return session.request(attempt.method.upper(), attempt.url, **attempt.kwargs)


def test_access_matrix(planted, client, sessions, world):
    ops = [op for op in load_operations() if op.operation_id not in PROXY_ROUTES]
    people = callers(world)
    people_by_person = list(subjects(world))
    for login in {c.login for c in people.values() if c.login}:
        sessions(login)  # sign everyone in before the threads start
    attempts: list[Attempt] = []
    for op in ops:
        tool = COVERED[op.operation_id][1]
        for obj in OBJECTS:
            for variant in (VARIANTS if tool else ("-",)):
                for caller in people.values():
                    a = build(op, caller, obj, variant, planted, world)
                    if a is not None:
                        attempts.append(a)
    reads = [a for a in attempts if a.method == "get"]
    denied_writes = [a for a in attempts if a.method != "get" and not a.allowed]
    allowed_writes = [a for a in attempts if a.method != "get" and a.allowed]

    unauthorised, leaks, errors = [], [], []
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    seen: set[str] = set()

    def run(attempt: Attempt, relaxed: bool) -> None:
        resp = send(attempt, client, sessions)
        key = f"{resp.status_code // 100}xx"
        with lock:
            statuses[key] = statuses.get(key, 0) + 1
        if resp.status_code >= 500:
            errors.append(f"{resp.status_code} {attempt.label()} {resp.text[:200]}")
        if resp.is_success and not attempt.allowed:
            unauthorised.append(f"{resp.status_code} {attempt.label()} {resp.text[:200]}")
        text = readable(resp) + " " + " ".join(f"{k}: {v}" for k, v in resp.headers.items())
        subject = None
        if attempt.op.operation_id in SUBJECT_ACCESS and attempt.allowed:
            subject = next((c for c in people_by_person if c.council_id == attempt.caller.council_id
                            and c.person_id == SUBJECT), None)
        if "mx" in text:
            with lock:
                seen.update(m for m in planted.markers() if m in text)
        for marker in planted.leaked(text, attempt.caller, relaxed=relaxed, subject=subject):
            leaks.append(f"{attempt.label()} -> {resp.status_code} shows {marker}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda a: run(a, False), reads))
    for a in denied_writes:  # nothing may change here: every one must be refused
        run(a, False)
    for a in allowed_writes:  # these may widen an audience: only markers of other cases count as leaks here
        run(a, True)

    report(f"access matrix: {len(attempts)} combinations tried ({len(ops)} operations x {len(people)} roles x "
          f"{len(OBJECTS)} objects, record variants {VARIANTS}); {len(reads)} reads, {len(denied_writes)} refused "
          f"writes, {len(allowed_writes)} permitted writes; statuses {dict(sorted(statuses.items()))}; "
          f"{len(seen)}/{sum(not r.owner_only for r in planted.records)} markers seen by allowed callers; "
          f"{len(unauthorised)} unauthorised 2xx, {len(leaks)} leaked fields, {len(errors)} server errors")
    # the oracle is not vacuous: every planted marker reached someone allowed to see it
    unseen = sorted(m for m, r in planted.markers().items() if m not in seen and not r.owner_only)
    assert not unseen, f"planted markers no allowed caller ever saw (the scan would miss leaks): {unseen}"
    assert not unauthorised, "unauthorised 2xx:\n" + "\n".join(unauthorised[:40])
    assert not leaks, "leaked fields:\n" + "\n".join(leaks[:40])
    assert not errors, "server errors:\n" + "\n".join(errors[:40])
