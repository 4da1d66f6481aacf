"""A world of councils, people, cases and switched-on tools, described as data,
and how to put it into a running platform through the gateway's APIs only
(the same calls a back-office system, an operator and a council administrator make)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from fsclient import FamilyStoryClient, Session

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY_TOOLS = tuple(p.parent.name for p in sorted((ROOT / "services").glob("*/manifest.json"))
                          if not os.environ.get("FS_TOOLS") or p.parent.name in os.environ["FS_TOOLS"].split(","))


def manifest(tool_id: str) -> dict:
    return json.loads((ROOT / "services" / tool_id / "manifest.json").read_text())


@dataclass(frozen=True)
class Person:
    login: str
    person_id: str | None
    council_id: str | None
    display_name: str
    kind: str  # family | young_person | staff | operator | machine
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()

    def as_login(self) -> dict:
        return {"login": self.login, "person_id": self.person_id or self.login, "council_id": self.council_id,
                "display_name": self.display_name, "kind": self.kind, "roles": list(self.roles),
                "scopes": list(self.scopes)}


@dataclass(frozen=True)
class Case:
    case_id: str
    council_id: str
    reference: str
    title: str
    members: dict[str, str]  # person_id -> role


@dataclass
class World:
    councils: dict[str, str]
    people: list[Person]
    cases: list[Case]
    enabled: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # council -> tool -> audiences

    def person(self, login: str) -> Person:
        return next(p for p in self.people if p.login == login)

    def write_people_file(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"people": [p.as_login() for p in self.people]}, indent=1))
        return path

    def operator_login(self) -> str:
        return next(p.login for p in self.people if p.kind == "operator")

    def backoffice_login(self, council_id: str) -> str:
        return next(p.login for p in self.people if p.kind == "machine" and p.council_id == council_id)

    def admin_login(self, council_id: str) -> str:
        return next(p.login for p in self.people if "council_admin" in p.roles and p.council_id == council_id)


def with_platform_people(councils: dict[str, str], people: list[Person]) -> list[Person]:
    """Adds the operator, and per council a back-office system, to a list of people."""
    extra = [Person("operator", "operator", None, "Platform operator", "operator", ("platform_operator",))]
    for council_id, name in councils.items():
        extra.append(Person(f"backoffice.{council_id}", f"backoffice-{council_id}", council_id,
                            f"{name} case management system", "machine", (), ("cases:read", "cases:write")))
    return people + extra


def seed(client: FamilyStoryClient, world: World) -> dict[str, Session]:
    """Put ``world`` into the platform; idempotent (every call is a PUT)."""
    operator = client.sign_in(world.operator_login())
    for council_id, name in world.councils.items():
        operator.ok("PUT", f"/api/catalogue/councils/{council_id}", json={"name": name})
    for tool_id in FIRST_PARTY_TOOLS:
        m = manifest(tool_id)
        current = operator.get(f"/api/catalogue/tools/{tool_id}")
        if current.status_code == 404 or current.json().get("version") != m["version"]:
            operator.ok("PUT", f"/api/catalogue/tools/{tool_id}", json=m)
    for council_id in world.councils:
        machine = client.sign_in(world.backoffice_login(council_id))
        for p in world.people:
            if p.council_id == council_id and p.kind in ("family", "young_person", "staff"):
                machine.ok("PUT", f"/api/cases/people/{p.person_id}", json={"display_name": p.display_name,
                                                                           "kind": p.kind})
        for case in world.cases:
            if case.council_id != council_id:
                continue
            machine.ok("PUT", f"/api/cases/cases/{case.case_id}", json={"reference": case.reference,
                                                                       "title": case.title})
            for person_id, role in case.members.items():
                machine.ok("PUT", f"/api/cases/cases/{case.case_id}/members/{person_id}", json={"role": role})
        admin = client.sign_in(world.admin_login(council_id))
        for tool_id, audiences in world.enabled.get(council_id, {}).items():
            if tool_id not in FIRST_PARTY_TOOLS:
                continue  # a tool this run does not include (FS_TOOLS)
            admin.ok("PUT", f"/api/catalogue/councils/{council_id}/tools/{tool_id}",
                     json={"audiences": audiences, "scopes": manifest(tool_id)["scopes"]})
    return {"operator": operator}
