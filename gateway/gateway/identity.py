"""Who a caller is: principals and the replaceable identity providers.

An ``IdentityProvider`` turns credentials into a ``Principal``. Only the demo
provider exists today (logins from a file, outside production); OpenID
Connect for staff, invitations for families and client credentials for
machines plug in behind the same interface.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

KINDS = ("family", "young_person", "staff", "operator", "machine")
_AUDIENCE_OF_KIND = {"family": "families", "young_person": "young_people", "staff": "staff"}


def audience_for(kind: str) -> str | None:
    """family -> families, young_person -> young_people, staff -> staff; operators and machines have none."""
    return _AUDIENCE_OF_KIND.get(kind)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, as stored with its session."""

    person_id: str
    council_id: str | None
    display_name: str
    kind: str
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    login: str = field(default="", compare=False)

    @property
    def audience(self) -> str | None:
        return audience_for(self.kind)

    @property
    def actor(self) -> str:
        return "machine" if self.kind == "machine" else "person"

    @property
    def is_machine(self) -> bool:
        return self.kind == "machine"

    def to_doc(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "council_id": self.council_id,
            "display_name": self.display_name,
            "kind": self.kind,
            "roles": list(self.roles),
            "scopes": list(self.scopes),
            "login": self.login,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Principal:
        kind = str(doc["kind"])
        if kind not in KINDS:
            raise ValueError(f"unknown person kind {kind!r}")
        return cls(
            person_id=str(doc["person_id"]),
            council_id=doc.get("council_id"),
            display_name=str(doc.get("display_name") or doc["person_id"]),
            kind=kind,
            roles=tuple(sorted(doc.get("roles") or ())),
            scopes=tuple(sorted(doc.get("scopes") or ())),
            login=str(doc.get("login") or ""),
        )


class IdentityProvider(ABC):
    """Turns credentials into a principal, or None when they are not accepted."""

    name: str = "abstract"

    @abstractmethod
    async def authenticate(self, credentials: dict[str, Any]) -> Principal | None: ...

    def directory(self) -> list[Principal]:
        """People a demo sign-in page may list; empty for real providers."""
        return []


class DemoIdentityProvider(IdentityProvider):
    """Seeded demo people, signed in by login alone. Never built in production."""

    name = "demo"

    def __init__(self, people: list[Principal]):
        self._by_login = {p.login: p for p in people if p.login}

    @classmethod
    def from_file(cls, path: str) -> DemoIdentityProvider:
        if not path:
            log.warning("DEMO_PEOPLE_FILE is not set: the demo identity provider knows nobody")
            return cls([])
        doc = json.loads(Path(path).read_text())
        return cls([Principal.from_doc(p) for p in doc.get("people", [])])

    async def authenticate(self, credentials: dict[str, Any]) -> Principal | None:
        login = credentials.get("login")
        if not isinstance(login, str):
            return None
        return self._by_login.get(login)

    def directory(self) -> list[Principal]:
        return list(self._by_login.values())
