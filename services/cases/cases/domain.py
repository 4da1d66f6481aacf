"""The case directory's rules, in plain Python (no pymongo, no flask, no nameko).

``CaseDirectory`` holds the use cases (who may do what, which role suits which
kind of person, which events a change publishes); a ``CaseStore`` (the
repository) gives it a council-scoped ``UnitOfWork``. Every read and write is
audited, refusals included.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from chassis.identity import Identity
from chassis.problems import Conflict, DomainError, Forbidden, NotFound, Unprocessable

T = TypeVar("T")

PERSON_KINDS = ("family", "young_person", "staff")
CASE_ROLES = ("parent", "carer", "child", "young_person", "social_worker", "manager")

# which roles each kind of person may hold on a case
ROLES_FOR_KIND: dict[str, frozenset[str]] = {
    "family": frozenset({"parent", "carer", "child"}),
    "young_person": frozenset({"young_person", "child"}),
    "staff": frozenset({"social_worker", "manager"}),
}

ROLE_IN_WORDS = {
    "parent": "a parent",
    "carer": "a carer",
    "child": "a child",
    "young_person": "a young person",
    "social_worker": "a social worker",
    "manager": "a manager",
}

WRITE_SCOPE = "cases:write"
READ_SCOPE = "cases:read"
STORY_TITLE_MAX = 200


@dataclass(frozen=True)
class Person:
    person_id: str
    display_name: str
    kind: str


@dataclass(frozen=True)
class Case:
    case_id: str
    reference: str
    title: str
    opened_at: datetime


@dataclass(frozen=True)
class Membership:
    case_id: str
    person_id: str
    role: str


@dataclass(frozen=True)
class CaseMember:
    person_id: str
    display_name: str
    role: str


@dataclass(frozen=True)
class MyCase:
    case_id: str
    reference: str
    title: str
    role: str


# --- the repository's shape ------------------------------------------------------


class UnitOfWork(ABC):
    """The directory of one council, as one transaction (or one read) sees it."""

    council_id: str

    @abstractmethod
    def person(self, person_id: str) -> Person | None: ...

    @abstractmethod
    def case(self, case_id: str) -> Case | None: ...

    @abstractmethod
    def membership(self, case_id: str, person_id: str) -> Membership | None: ...

    @abstractmethod
    def memberships_of(self, person_id: str) -> list[Membership]: ...

    @abstractmethod
    def members_of(self, case_id: str) -> list[CaseMember]: ...

    @abstractmethod
    def cases_of(self, person_id: str) -> list[MyCase]: ...

    @abstractmethod
    def put_person(self, person: Person) -> None: ...

    @abstractmethod
    def put_case(self, case: Case) -> None: ...

    @abstractmethod
    def put_membership(self, membership: Membership) -> None: ...

    @abstractmethod
    def delete_membership(self, case_id: str, person_id: str) -> None: ...

    @abstractmethod
    def publish(self, event_type: str, data: dict[str, Any], story: dict[str, Any] | None = None) -> None:
        """Add an event to the outbox, in this unit's transaction."""

    @abstractmethod
    def audit(self, action: str, *, case_id: str | None = None, record_id: str | None = None,
              outcome: str = "ok") -> None: ...


class CaseStore(ABC):
    """The repository: hands out units of work bound to the caller's council."""

    @abstractmethod
    def atomically(self, who: Identity, fn: Callable[[UnitOfWork], T]) -> T:
        """Run ``fn`` in one transaction; a raised error leaves nothing written."""

    @abstractmethod
    def reading(self, who: Identity) -> UnitOfWork:
        """A unit for reads (and their audit records), without a transaction."""

    @abstractmethod
    def audit_refusal(self, who: Identity, action: str, *, case_id: str | None, record_id: str | None,
                      outcome: str) -> None:
        """Record a refused request (outside any aborted transaction)."""


# --- rules -----------------------------------------------------------------------


def role_suits_kind(role: str, kind: str) -> bool:
    return role in ROLES_FOR_KIND.get(kind, frozenset())


def is_machine_with(who: Identity, *scopes: str) -> bool:
    return who.actor == "machine" and any(who.has_scope(s) for s in scopes)


def is_council_admin(who: Identity) -> bool:
    return who.is_person and who.has_role("council_admin")


def may_write_directory(who: Identity) -> bool:
    """People and cases are pushed by back-office machines or set by a council administrator."""
    return who.council_id is not None and (is_machine_with(who, WRITE_SCOPE) or is_council_admin(who))


def may_read_person(who: Identity, person_id: str) -> bool:
    if who.council_id is None:
        return False
    if is_machine_with(who, READ_SCOPE, WRITE_SCOPE):
        return True
    return who.is_person and (who.is_staff or who.subject == person_id)


def member_added_story(case_id: str, person: Person, role: str, when: datetime) -> dict[str, Any]:
    title = f"{person.display_name} joined the case as {ROLE_IN_WORDS[role]}"
    return {
        "case_id": case_id,
        "kind": "membership",
        "title": _fit(title),
        "occurred_at": when.isoformat(),
        "audience": {"kind": "case", "people": [], "exclude": []},
    }


def member_removed_story(case_id: str, person: Person, when: datetime) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "kind": "membership",
        "title": _fit(f"{person.display_name} is no longer on the case"),
        "occurred_at": when.isoformat(),
        "audience": {"kind": "staff", "people": [], "exclude": []},
    }


def _fit(title: str) -> str:
    return title if len(title) <= STORY_TITLE_MAX else title[: STORY_TITLE_MAX - 1] + "…"


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- use cases -------------------------------------------------------------------


class CaseDirectory:
    """Every operation of the cases API, with its permission and audit."""

    def __init__(self, store: CaseStore, clock: Callable[[], datetime] = _utcnow):
        self.store = store
        self.clock = clock

    def _refuse(self, who: Identity, action: str, error: DomainError, *, case_id: str | None = None,
                record_id: str | None = None) -> DomainError:
        self.store.audit_refusal(who, action, case_id=case_id, record_id=record_id, outcome=error.slug)
        return error

    def _write(self, who: Identity, action: str, fn: Callable[[UnitOfWork], T], *, case_id: str | None,
               record_id: str | None) -> T:
        try:
            return self.store.atomically(who, fn)
        except DomainError as error:
            raise self._refuse(who, action, error, case_id=case_id, record_id=record_id) from None

    # people ----------------------------------------------------------------------
    def put_person(self, who: Identity, person_id: str, display_name: str, kind: str) -> tuple[Person, bool]:
        """Create or update a person; returns (person, created)."""
        action = "person.put"
        if not may_write_directory(who):
            raise self._refuse(who, action, Forbidden("Only the council's systems and administrators "
                                                     "change the case directory."), record_id=person_id)
        if kind not in ROLES_FOR_KIND:
            raise self._refuse(who, action, Unprocessable(f"Unknown kind of person {kind!r}."),
                               record_id=person_id)
        person = Person(person_id, display_name, kind)

        def apply(uow: UnitOfWork) -> tuple[Person, bool]:
            current = uow.person(person_id)
            if current is not None and current.kind != kind:
                clashing = [m for m in uow.memberships_of(person_id) if not role_suits_kind(m.role, kind)]
                if clashing:
                    cases = ", ".join(sorted(m.case_id for m in clashing))
                    raise Conflict(f"The person holds roles a {kind.replace('_', ' ')} person may not hold "
                                   f"(on cases {cases}); change or remove those memberships first.")
            if current != person:
                uow.put_person(person)
            outcome = "created" if current is None else ("updated" if current != person else "unchanged")
            uow.audit(action, record_id=person_id, outcome=outcome)
            return person, current is None

        return self._write(who, action, apply, case_id=None, record_id=person_id)

    def get_person(self, who: Identity, person_id: str) -> Person:
        action = "person.read"
        if not may_read_person(who, person_id):
            raise self._refuse(who, action, NotFound("No such person."), record_id=person_id)
        uow = self.store.reading(who)
        person = uow.person(person_id)
        if person is None:
            uow.audit(action, record_id=person_id, outcome="not-found")
            raise NotFound("No such person.")
        uow.audit(action, record_id=person_id)
        return person

    def memberships(self, who: Identity, person_id: str) -> list[Membership]:
        """A person's case roles, for the gateway to build internal tokens from."""
        action = "memberships.read"
        if not who.is_gateway or who.council_id is None:
            raise self._refuse(who, action, NotFound("No such person."), record_id=person_id)
        uow = self.store.reading(who)
        found = uow.memberships_of(person_id)
        uow.audit(action, record_id=person_id)
        return found

    # cases -----------------------------------------------------------------------
    def put_case(self, who: Identity, case_id: str, reference: str, title: str) -> tuple[Case, bool]:
        """Open or update a case; opening publishes case_opened in the same transaction."""
        action = "case.put"
        if not may_write_directory(who):
            raise self._refuse(who, action, Forbidden("Only the council's systems and administrators "
                                                     "change the case directory."), case_id=case_id)

        def apply(uow: UnitOfWork) -> tuple[Case, bool]:
            current = uow.case(case_id)
            if current is None:
                case = Case(case_id, reference, title, self.clock())
                uow.put_case(case)
                uow.publish("case_opened", {"case_id": case_id})
                uow.audit(action, case_id=case_id, record_id=case_id, outcome="created")
                return case, True
            case = Case(case_id, reference, title, current.opened_at)
            if case != current:
                uow.put_case(case)
            uow.audit(action, case_id=case_id, record_id=case_id,
                      outcome="updated" if case != current else "unchanged")
            return case, False

        return self._write(who, action, apply, case_id=case_id, record_id=case_id)

    def get_case(self, who: Identity, case_id: str) -> tuple[Case, list[CaseMember]]:
        """A case with its members, for its members (per the directory) and reading machines."""
        action = "case.read"
        not_found = NotFound("No such case.")
        if who.council_id is None or not (who.is_person or is_machine_with(who, READ_SCOPE, WRITE_SCOPE)):
            raise self._refuse(who, action, not_found, case_id=case_id)
        uow = self.store.reading(who)
        case = uow.case(case_id)
        if case is None or (who.is_person and uow.membership(case_id, who.subject) is None):
            uow.audit(action, case_id=case_id, record_id=case_id, outcome="not-found")
            raise not_found
        members = uow.members_of(case_id)
        uow.audit(action, case_id=case_id, record_id=case_id)
        return case, members

    def my_cases(self, who: Identity) -> list[MyCase]:
        action = "me.cases"
        if not who.is_person or who.council_id is None:
            raise self._refuse(who, action, NotFound("Only a person has cases."), record_id=who.subject)
        uow = self.store.reading(who)
        found = uow.cases_of(who.subject)
        uow.audit(action, record_id=who.subject)
        return found

    # memberships -----------------------------------------------------------------
    def _check_may_change_members(self, who: Identity, uow: UnitOfWork, case_id: str) -> None:
        """Machines with cases:write and council admins may; otherwise only a manager on the case.

        A person who is not on the case learns nothing about it (404)."""
        if is_machine_with(who, WRITE_SCOPE) or is_council_admin(who):
            return
        if not who.is_person:
            raise Forbidden("This caller may not change who is on a case.")
        own = uow.membership(case_id, who.subject)
        if own is None:
            raise NotFound("No such case.")
        if own.role != "manager":
            raise Forbidden("Only a manager on the case changes who is on it.")

    def _check_caller_kind(self, who: Identity) -> None:
        if who.council_id is None:
            raise NotFound("No such case.")
        if who.actor == "machine" and not who.has_scope(WRITE_SCOPE):
            raise Forbidden("This system has no cases:write scope.")
        if who.actor not in ("machine", "person"):
            raise Forbidden("This caller may not change who is on a case.")

    def put_member(self, who: Identity, case_id: str, person_id: str, role: str) -> tuple[Membership, bool]:
        """Add a member or change their role; publishes member_added when something changed."""
        action = "member.put"
        try:
            self._check_caller_kind(who)
        except DomainError as error:
            raise self._refuse(who, action, error, case_id=case_id, record_id=person_id) from None

        def apply(uow: UnitOfWork) -> tuple[Membership, bool]:
            self._check_may_change_members(who, uow, case_id)
            if uow.case(case_id) is None:
                raise NotFound("No such case.")
            person = uow.person(person_id)
            if person is None:
                raise NotFound("No such person.")
            if not role_suits_kind(role, person.kind):
                raise Unprocessable(f"A {person.kind.replace('_', ' ')} person cannot be "
                                    f"{ROLE_IN_WORDS.get(role, role)} on a case.")
            current = uow.membership(case_id, person_id)
            membership = Membership(case_id, person_id, role)
            if current == membership:
                uow.audit(action, case_id=case_id, record_id=person_id, outcome="unchanged")
                return membership, False
            uow.put_membership(membership)
            uow.publish("member_added", {"case_id": case_id, "person_id": person_id, "role": role},
                        member_added_story(case_id, person, role, self.clock()))
            uow.audit(action, case_id=case_id, record_id=person_id,
                      outcome="created" if current is None else "updated")
            return membership, current is None

        return self._write(who, action, apply, case_id=case_id, record_id=person_id)

    def remove_member(self, who: Identity, case_id: str, person_id: str) -> None:
        """Take a person off a case; publishes member_removed in the same transaction."""
        action = "member.remove"
        try:
            self._check_caller_kind(who)
        except DomainError as error:
            raise self._refuse(who, action, error, case_id=case_id, record_id=person_id) from None

        def apply(uow: UnitOfWork) -> None:
            self._check_may_change_members(who, uow, case_id)
            current = uow.membership(case_id, person_id)
            if current is None:
                raise NotFound("That person is not on the case.")
            person = uow.person(person_id) or Person(person_id, person_id, "family")
            uow.delete_membership(case_id, person_id)
            uow.publish("member_removed", {"case_id": case_id, "person_id": person_id, "role": current.role},
                        member_removed_story(case_id, person, self.clock()))
            uow.audit(action, case_id=case_id, record_id=person_id)

        self._write(who, action, apply, case_id=case_id, record_id=person_id)
