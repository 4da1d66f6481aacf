"""Who is calling, as the gateway's internal token says.

The gateway resolves the caller's council, audience, council-level roles and
case memberships and signs them into the internal token; services read them
only from a verified token, never from a header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# roles a person can hold on a case
FAMILY_CASE_ROLES = frozenset({"parent", "carer", "child", "young_person"})
STAFF_CASE_ROLES = frozenset({"social_worker", "manager"})
CASE_ROLES = FAMILY_CASE_ROLES | STAFF_CASE_ROLES

# audiences a tool can be switched on for
AUDIENCES = ("families", "young_people", "staff")


@dataclass(frozen=True)
class Identity:
    subject: str
    actor: str  # person | machine | gateway
    council_id: str | None
    audience: str | None = None
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    cases: dict[str, str] = field(default_factory=dict)
    client_ip: str | None = None
    token_id: str | None = None

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Identity:
        cases = claims.get("cases") or {}
        return cls(
            subject=str(claims["sub"]),
            actor=str(claims.get("actor", "person")),
            council_id=claims.get("council"),
            audience=claims.get("audience"),
            roles=frozenset(claims.get("roles") or ()),
            scopes=frozenset(claims.get("scopes") or ()),
            cases={str(k): str(v) for k, v in cases.items()} if isinstance(cases, dict) else {},
            client_ip=claims.get("ip"),
            token_id=claims.get("jti"),
        )

    def to_claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {"sub": self.subject, "actor": self.actor, "council": self.council_id}
        if self.audience:
            claims["audience"] = self.audience
        if self.roles:
            claims["roles"] = sorted(self.roles)
        if self.scopes:
            claims["scopes"] = sorted(self.scopes)
        if self.cases:
            claims["cases"] = dict(self.cases)
        if self.client_ip:
            claims["ip"] = self.client_ip
        return claims

    # --- questions services ask -------------------------------------------------
    @property
    def is_person(self) -> bool:
        return self.actor == "person"

    @property
    def is_gateway(self) -> bool:
        return self.actor == "gateway"

    @property
    def is_staff(self) -> bool:
        return self.audience == "staff"

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def case_role(self, case_id: str) -> str | None:
        """The caller's role on a case, or None when they are not on it."""
        return self.cases.get(case_id)

    def is_staff_on(self, case_id: str) -> bool:
        return self.cases.get(case_id) in STAFF_CASE_ROLES

    def is_family_on(self, case_id: str) -> bool:
        return self.cases.get(case_id) in FAMILY_CASE_ROLES
