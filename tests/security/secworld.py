"""The security suites' world: who the roles are, the records planted with unique markers in every
tool for each object (case-1 of council A, case-2 of council A, case-1 of council B), and the
visibility rule of the platform (DESIGN: the same for every tool) to decide which markers a caller
may ever see."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
ALL_AUDIENCES = ["families", "young_people", "staff"]
STAFF_ROLES = {"social_worker", "manager"}
FAMILY_ROLES = {"parent", "carer", "child", "young_person"}

# role of the matrix -> login of the world (tests/conftest.py); None: no credentials at all
ROLES: dict[str, str | None] = {
    "anonymous": None,
    "parent": "parent1.a",
    "excluded_parent": "parent2.a",
    "young_person": "young.a",
    "carer": "carer.a",
    "social_worker_on_case": "worker.a",
    "social_worker_not_on_case": "otherworker.a",
    "manager": "manager.a",
    "council_admin": "admin.a",
    "other_council": "worker.b",
    "vendor_without_scope": "vendor.without.a",
    "vendor_with_scope": "vendor.with.a",
}

A, B = "council-a", "council-b"
# object of the matrix -> (council, case id, the login of a social worker on it who plants its records)
OBJECTS: dict[str, tuple[str, str, str]] = {
    "own_case": (A, "case-1", "worker.a"),
    "other_case_same_council": (A, "case-2", "otherworker.a"),
    "other_council": (B, "case-1", "worker.b"),
}
PROBE_TOOL = "matrix-probe"  # a catalogue tool of the matrix's own, switched on/off by the council-admin operations
PROBE_PERSON = "matrix-extra"  # a person of each council that the directory-writing operations may change freely
TOOLS = ("timeline", "documents", "messaging", "plans", "referrals")
VARIANTS = ("open", "staff")  # open: the whole case except "alex"; staff: staff on the case only


@dataclass(frozen=True)
class Caller:
    role: str
    login: str | None
    person_id: str | None = None
    council_id: str | None = None
    kind: str | None = None
    roles: tuple[str, ...] = ()
    cases: dict[str, str] = field(default_factory=dict)  # case id -> role, in the caller's council

    @property
    def signed_in(self) -> bool:
        return self.login is not None

    @property
    def is_person(self) -> bool:
        return self.kind in ("family", "young_person", "staff")

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    def case_role(self, council_id: str, case_id: str) -> str | None:
        if not self.is_person or council_id != self.council_id:
            return None
        return self.cases.get(case_id)


def callers(world) -> dict[str, Caller]:
    out = {}
    for role, login in ROLES.items():
        if login is None:
            out[role] = Caller(role, None)
            continue
        p = world.person(login)
        pid = p.person_id or p.login
        cases = {c.case_id: c.members[pid] for c in world.cases if c.council_id == p.council_id and pid in c.members}
        out[role] = Caller(role, login, pid, p.council_id, p.kind, tuple(p.roles), cases)
    return out


@dataclass
class Record:
    """One planted record: where it is, its ids for the path parameters, its marker and who may see it."""

    tool: str
    obj: str
    variant: str
    council_id: str
    case_id: str
    marker: str
    audience: dict[str, Any]
    author: str
    ids: dict[str, str]
    family_sees_only_when_published: bool = False
    published: bool = True
    owner_only: bool = False  # a referral conversation: only whoever started it

    def visible_to(self, caller: Caller) -> bool:
        role = caller.case_role(self.council_id, self.case_id)
        if role is None:
            return False
        if caller.person_id == self.author:
            return True
        if self.owner_only:
            return False
        if caller.person_id in self.audience.get("exclude", ()):
            return False
        if role in STAFF_ROLES:
            return True
        if role in FAMILY_ROLES:
            if self.family_sees_only_when_published and not self.published:
                return False
            if self.audience.get("kind") == "case":
                return True
            if self.audience.get("kind") == "named":
                return caller.person_id in self.audience.get("people", ())
        return False

    def member_sees(self, caller: Caller) -> bool:
        """Relaxed: any member of the record's case (used after writes that may have widened an audience)."""
        return caller.case_role(self.council_id, self.case_id) is not None


class Planted:
    def __init__(self):
        self.records: list[Record] = []

    def add(self, record: Record) -> None:
        self.records.append(record)

    def find(self, tool: str, obj: str, variant: str) -> Record | None:
        for r in self.records:
            if (r.tool, r.obj, r.variant) == (tool, obj, variant):
                return r
        return None

    def markers(self) -> dict[str, Record]:
        return {r.marker: r for r in self.records}

    def leaked(self, text: str, caller: Caller, relaxed: bool = False, subject: Caller | None = None) -> list[str]:
        """Markers in ``text`` of records the caller may not see (nor, in a subject access export, the subject)."""
        if "mx" not in text:
            return []
        out = []
        for marker, rec in self.markers().items():
            if marker not in text:
                continue
            if subject is not None and rec.visible_to(subject):
                continue
            if not (rec.member_sees(caller) if relaxed else rec.visible_to(caller)):
                out.append(f"{marker} ({rec.tool} {rec.obj} {rec.variant})")
        return out


# --- planting ------------------------------------------------------------------------------------


def wait_for(predicate, timeout: float, what: str):
    start = time.monotonic()
    last = None
    while time.monotonic() - start < timeout:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)  # polling interval of a deadline-bound check
    raise AssertionError(f"not true within {timeout}s: {what}")


def _ok(resp, what: str):
    assert resp.is_success, f"{what}: {resp.status_code} {resp.text[:400]}"
    return resp.json() if resp.content and "json" in resp.headers.get("content-type", "") else None


def switch_everything_on(client, sessions, world) -> None:
    """Every first-party tool on for every audience in both councils, plus the probe tool."""
    sys_path_manifest = __import__("world").manifest
    operator = sessions(world.operator_login())
    probe = dict(sys_path_manifest("timeline"), id=PROBE_TOOL, name="Matrix probe")
    current = operator.get(f"/api/catalogue/tools/{PROBE_TOOL}")
    if current.status_code == 404:
        _ok(operator.put(f"/api/catalogue/tools/{PROBE_TOOL}", json=probe), "publish the probe tool")
    for council in (A, B):
        admin = sessions(world.admin_login(council))
        for tool in (*TOOLS, PROBE_TOOL):
            scopes = sys_path_manifest("timeline" if tool == PROBE_TOOL else tool)["scopes"]
            _ok(admin.put(f"/api/catalogue/councils/{council}/tools/{tool}",
                          json={"audiences": ALL_AUDIENCES, "scopes": scopes}), f"enable {tool} in {council}")
        backoffice = sessions(world.backoffice_login(council))
        _ok(backoffice.put(f"/api/cases/people/{PROBE_PERSON}", json={"display_name": "Matrix Extra",
                                                                       "kind": "family"}), "probe person")
    for login in ("parent1.a", "worker.a", "worker.b"):
        wait_for(lambda s=sessions(login): set(TOOLS) <= {t["tool_id"] for t in s.ok("GET", "/api/tools").json()[
            "items"]}, 10, f"tools on for {login}")


def plant(sessions, world) -> Planted:
    planted = Planted()
    tag = uuid.uuid4().hex[:8]
    for obj, (council, case_id, staff_login) in OBJECTS.items():
        staff = sessions(staff_login)
        staff_id = world.person(staff_login).person_id
        case = next(c for c in world.cases if (c.council_id, c.case_id) == (council, case_id))
        family = [p for p, r in case.members.items() if r in FAMILY_ROLES]
        other_staff = [p for p, r in case.members.items() if r in STAFF_ROLES and p != staff_id]
        exclude = ["alex"] if "alex" in family else []
        open_aud = {"kind": "case", "people": [], "exclude": exclude}
        staff_aud = {"kind": "staff", "people": [], "exclude": []}
        subject = "yan" if "yan" in family else family[0]

        def mk(tool, variant, obj=obj):
            return f"mx{tag}-{tool}-{obj.replace('_', '')}-{variant}"

        def add(tool, variant, audience, ids, **kw):
            planted.add(Record(tool, obj, variant, council, case_id, mk(tool, variant), audience, staff_id, ids, **kw))

        base = f"/api/tools/%s/cases/{case_id}"
        # timeline: an entry and a comment on it, both carrying the marker
        for variant, aud in (("open", open_aud), ("staff", staff_aud)):
            m = mk("timeline", variant)
            e = _ok(staff.post(base % "timeline" + "/entries", json={
                "kind": "note", "title": m, "body": m, "occurred_at": "2026-01-02T10:00:00+00:00",
                "audience": aud}), "plant a timeline entry")
            _ok(staff.post(base % "timeline" + f"/entries/{e['entry_id']}/comments", json={"body": m}),
                "plant a comment")
            add("timeline", variant, aud, {"entry_id": e["entry_id"]})
        # documents: the marker is the file name and the content
        for variant, params in (("open", {"audience": "case", **({"exclude": exclude} if exclude else {})}),
                                ("staff", {"audience": "staff"})):
            m = mk("documents", variant)
            d = _ok(staff.post(base % "documents" + "/documents", params={"filename": m + ".txt", **params},
                               content=f"{m}\nplanted by the security matrix\n".encode(),
                               headers={"Content-Type": "application/octet-stream"}), "plant a document")
            aud = open_aud if variant == "open" else staff_aud
            add("documents", variant, aud, {"document_id": d["document_id"], "version": "1"})
        # messaging: a thread with the family (named), and one among staff only where the case has more staff
        for variant, people in (("open", family), ("staff", other_staff)):
            if not people:
                continue
            m = mk("messaging", variant)
            t = _ok(staff.post(base % "messaging" + "/threads", json={"subject": m, "participants": people,
                                                                      "body": m}), "plant a thread")
            msgs = _ok(staff.get(base % "messaging" + f"/threads/{t['thread_id']}/messages"), "messages")
            add("messaging", variant, {"kind": "named", "people": [staff_id, *people], "exclude": []},
                {"thread_id": t["thread_id"], "message_id": msgs["items"][0]["message_id"]})
        # plans: a published plan for the case (without alex) and a draft only staff see
        for variant, aud, publish in (("open", open_aud, True), ("staff", open_aud, False)):
            m = mk("plans", variant)
            p = _ok(staff.post(base % "plans" + "/plans", json={
                "kind": "child_in_need", "title": m, "review_due": "2026-10-01", "audience": aud,
                "sections": [{"area": "health", "goals": [{"title": m, "description": m, "actions": []}]}]}),
                "plant a plan")
            ids = {"plan_id": p["plan_id"], "number": "1", "a": "1", "b": "1"}
            if publish:
                v = _ok(staff.post(base % "plans" + f"/plans/{p['plan_id']}/publish"), "publish")
                ids["goal_id"] = v["published"]["sections"][0]["goals"][0]["goal_id"]
                _ok(staff.post(base % "plans" + f"/plans/{p['plan_id']}/goals/{ids['goal_id']}/comments",
                               json={"body": m}), "plan comment")
            else:
                ids["goal_id"] = p["draft"]["sections"][0]["goals"][0]["goal_id"]
            add("plans", variant, aud, ids, family_sees_only_when_published=True, published=publish)
        # referrals: staff-only by default; the open one is shared with the case (without alex)
        form = {"subject_person_id": subject, "service": "CAMHS", "reasons": "planted", "urgency": "soon",
                "parents_informed": True, "parents_consented": True, "attachments": []}
        for variant in ("open", "staff"):
            m = mk("referrals", variant)
            r = wait_for(lambda: (lambda resp: resp.json() if resp.status_code == 201 else None)(
                staff.post(base % "referrals" + "/referrals", json={**form, "concerns": m})), 30,
                "a referral can be made (memberships reached the referrals service)")
            aud = staff_aud
            if variant == "open":
                _ok(staff.put(base % "referrals" + f"/referrals/{r['referral_id']}/audience",
                              json={"kind": "case", "exclude": exclude}), "share a referral")
                aud = open_aud
            add("referrals", variant, aud, {"referral_id": r["referral_id"]})
        conv = _ok(staff.post(base % "referrals" + "/conversations"), "start a conversation")
        planted.add(Record("referrals-conversation", obj, "owner", council, case_id, mk("conversation", "owner"),
                           staff_aud, staff_id, {"conversation_id": conv["conversation_id"]}, owner_only=True))
    return planted


# --- contracts -----------------------------------------------------------------------------------

METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    contract: str  # file stem: cases, timeline, gateway, ...
    method: str
    path: str
    operation_id: str
    spec: dict = field(hash=False, compare=False)
    doc: dict = field(hash=False, compare=False)

    @property
    def gateway_prefix(self) -> str:
        if self.contract == "gateway":
            return ""
        if self.contract in ("cases", "catalogue"):
            return f"/api/{self.contract}"
        return f"/api/tools/{self.contract}"


def load_operations() -> list[Operation]:
    ops = []
    for path in sorted(CONTRACTS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for p, item in doc["paths"].items():
            for method in METHODS:
                if method in item:
                    spec = dict(item[method])
                    spec["parameters"] = [*item.get("parameters", []), *spec.get("parameters", [])]
                    ops.append(Operation(path.stem, method, p, spec["operationId"], spec, doc))
    return ops


def resolve(doc: dict, node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        target = doc
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


_DATE = "2026-05-01"
_DATETIME = "2026-05-01T10:00:00+00:00"


def example_of(doc: dict, schema: Any, name: str = "", depth: int = 0) -> Any:
    """A deterministic, valid-looking value of a JSON schema (required properties only)."""
    schema = resolve(doc, schema) or {}
    if depth > 8:
        return None
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    if "enum" in schema:
        return next(v for v in schema["enum"] if v is not None)
    for combo in ("allOf", "oneOf", "anyOf"):
        if combo in schema:
            if combo == "allOf":
                merged: dict = {}
                for part in schema[combo]:
                    part = resolve(doc, part)
                    merged.setdefault("properties", {}).update(part.get("properties", {}))
                    merged.setdefault("required", []).extend(part.get("required", []))
                    merged.setdefault("type", part.get("type", "object"))
                return example_of(doc, merged, name, depth + 1)
            return example_of(doc, schema[combo][0], name, depth + 1)
    kind = schema.get("type") or ("object" if "properties" in schema else "string")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: example_of(doc, props.get(k, {}), k, depth + 1) for k in schema.get("required", [])}
    if kind == "array":
        n = max(schema.get("minItems", 0), 0)
        return [example_of(doc, schema.get("items", {}), name, depth + 1) for _ in range(n)]
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return max(schema.get("minimum", 1), 1)
    fmt = schema.get("format")
    if fmt == "date":
        return _DATE
    if fmt == "date-time":
        return _DATETIME
    pattern = schema.get("pattern")
    for candidate in ("probe-1", "probe", "p1", "1", "a", "x" * max(schema.get("minLength", 1), 1)):
        if (not pattern or re.search(pattern, candidate)) and len(candidate) >= schema.get("minLength", 0) \
                and len(candidate) <= schema.get("maxLength", 10_000):
            return candidate
    return "probe"
