"""The platform's audience rule, once: who on a case sees a record that carries an audience.

An audience is ``{"kind": "case" | "staff" | "named", "people": [...], "exclude": [...]}``.
The rule: the author always sees what they wrote; staff on the case see
everything except where they are excluded; a family-side member sees "case"
unless excluded, "named" only when listed and not excluded, never "staff".
Nobody without a role on the case sees anything.

``can_see`` is the rule in plain Python; ``audience_filter`` is the same rule
as a MongoDB query (``chassis/tests/test_audience.py`` holds the two to the
same answers). A tool's own extra rules (deleted documents, draft plans, ...)
stay in the tool, around these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .identity import FAMILY_CASE_ROLES, STAFF_CASE_ROLES, Identity
from .problems import NotFound

NOBODY: dict[str, Any] = {"_id": {"$exists": False}}  # matches no document


@dataclass(frozen=True)
class Viewer:
    """A person looking at one case: who they are, their council, their role on the case."""

    person_id: str
    council_id: str
    role: str

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_CASE_ROLES

    @property
    def is_family(self) -> bool:
        return self.role in FAMILY_CASE_ROLES


def case_role_of(who: Identity, case_id: str, not_found_message: str) -> str:
    """The caller's role on ``case_id``; 404 when they are no person of a council with a role on it."""
    role = who.case_role(case_id)
    if not who.is_person or not who.council_id or role not in STAFF_CASE_ROLES | FAMILY_CASE_ROLES:
        raise NotFound(not_found_message)
    return role


def viewer_on(who: Identity, case_id: str, not_found_message: str) -> Viewer:
    """The caller as a viewer of ``case_id``; 404 when they hold no role on it (never reveal it exists)."""
    role = case_role_of(who, case_id, not_found_message)
    return Viewer(person_id=who.subject, council_id=who.council_id, role=role)


def can_see(audience: dict[str, Any], person_id: str, role: str | None, author_id: str | None = None) -> bool:
    """Whether ``person_id`` with ``role`` on the case sees a record with this ``audience``.

    ``author_id`` is the person who wrote the record (they always see it).
    """
    if role is None:
        return False
    if author_id is not None and author_id == person_id:
        return True
    if person_id in audience.get("exclude", ()):
        return False
    if role in STAFF_CASE_ROLES:
        return True
    if role in FAMILY_CASE_ROLES:
        if audience["kind"] == "case":
            return True
        if audience["kind"] == "named":
            return person_id in audience.get("people", ())
    return False


def audience_filter(person_id: str, role: str | None, field: str = "audience",
                    author_field: str | None = "author.person_id") -> dict[str, Any]:
    """The Mongo condition for "``person_id`` with ``role`` on the case may see this record".

    ``field`` is where the audience is stored; ``author_field`` the path of the
    author's person id (``None``: no author branch, for a tool that wraps the
    author's own branch itself).
    """
    not_excluded = {f"{field}.exclude": {"$nin": [person_id]}}
    own = [{author_field: person_id}] if author_field else []
    if role in STAFF_CASE_ROLES:
        return {"$or": [*own, not_excluded]}
    if role in FAMILY_CASE_ROLES:
        return {"$or": [
            *own,
            {f"{field}.kind": "case", **not_excluded},
            {f"{field}.kind": "named", f"{field}.people": person_id, **not_excluded},
        ]}
    return NOBODY
