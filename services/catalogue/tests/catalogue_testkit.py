"""Fixtures and factories of the catalogue's tests."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chassis.identity import Identity

A, B = "council-a", "council-b"


def person(sub: str, council: str | None, audience: str = "staff", *roles: str) -> Identity:
    return Identity(subject=sub, actor="person", council_id=council, audience=audience, roles=frozenset(roles))


OPERATOR = person("operator-1", None, "staff", "platform_operator")
ADMIN_A = person("admin.a", A, "staff", "council_admin")
ADMIN_B = person("admin.b", B, "staff", "council_admin")
WORKER_A = person("worker.a", A, "staff", "social_worker")
MANAGER_A = person("manager.a", A, "staff", "manager")
PARENT_A = person("parent.a", A, "families")
YOUNG_A = person("young.a", A, "young_people")
PARENT_B = person("parent.b", B, "families")
# a machine of council A holding the admin role still is not a council administrator (not a person)
MACHINE_A = Identity(subject="liquidlogic-a", actor="machine", council_id=A, roles=frozenset({"council_admin"}),
                     scopes=frozenset({"cases:write"}))
GATEWAY = Identity(subject="gateway", actor="gateway", council_id=None)
# an operator token minted as a machine: publishing needs a person
OPERATOR_MACHINE = Identity(subject="ops-bot", actor="machine", council_id=None,
                            roles=frozenset({"platform_operator"}))


def manifest(**overrides: Any) -> dict:
    """A valid tool manifest; keyword overrides replace top-level fields."""
    base = {
        "id": "timeline",
        "name": "Timeline",
        "vendor": {"id": "family-story", "name": "Family Story"},
        "version": "1.0.0",
        "summary": "The family's story in plain English.",
        "audiences": ["families", "young_people", "staff"],
        "scopes": ["cases:read", "timeline:write"],
        "events": {"publishes": ["timeline.entry_added"], "consumes": ["cases.member_added"]},
        "contract": "timeline.yaml",
        "runs_at": {"service": "timeline"},
    }
    base.update(copy.deepcopy(overrides))
    return base


@pytest.fixture
def make_manifest():
    return manifest
