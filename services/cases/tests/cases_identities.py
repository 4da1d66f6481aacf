"""Identity factories shared by the unit and integration tests."""

from __future__ import annotations

from chassis.identity import Identity

COUNCIL_A = "council-a"
COUNCIL_B = "council-b"


def machine(council: str | None = COUNCIL_A, scopes=("cases:write",), **overrides) -> Identity:
    return Identity(**{"subject": "liquidlogic", "actor": "machine", "council_id": council,
                       "scopes": frozenset(scopes), **overrides})


def person(sub: str, council: str | None = COUNCIL_A, audience: str = "families", roles=(), cases=None,
           **overrides) -> Identity:
    return Identity(**{"subject": sub, "actor": "person", "council_id": council, "audience": audience,
                       "roles": frozenset(roles), "cases": dict(cases or {}), **overrides})


def admin(council: str | None = COUNCIL_A, sub: str = "admin-1") -> Identity:
    return person(sub, council, audience="staff", roles=("council_admin",))


def gateway(council: str | None = COUNCIL_A) -> Identity:
    return Identity(subject="gateway", actor="gateway", council_id=council)
