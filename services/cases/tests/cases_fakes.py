"""An in-memory CaseStore for unit tests: the same abstract base as the Mongo store."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cases.domain import (
    Case,
    CaseMember,
    CaseStore,
    Membership,
    MyCase,
    Person,
    UnitOfWork,
)
from chassis.identity import Identity
from chassis.problems import NotFound

T = TypeVar("T")


@dataclass
class State:
    people: dict[tuple[str, str], Person] = field(default_factory=dict)
    cases: dict[tuple[str, str], Case] = field(default_factory=dict)
    memberships: dict[tuple[str, str, str], Membership] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)


class FakeUnitOfWork(UnitOfWork):
    def __init__(self, state: State, who: Identity, in_transaction: bool):
        if who.council_id is None:
            raise NotFound("council-less")
        self.state, self.who, self.council_id, self.in_transaction = state, who, who.council_id, in_transaction

    def person(self, person_id):
        return self.state.people.get((self.council_id, person_id))

    def case(self, case_id):
        return self.state.cases.get((self.council_id, case_id))

    def membership(self, case_id, person_id):
        return self.state.memberships.get((self.council_id, case_id, person_id))

    def memberships_of(self, person_id):
        return sorted((m for (c, _, p), m in self.state.memberships.items()
                       if c == self.council_id and p == person_id), key=lambda m: m.case_id)

    def members_of(self, case_id):
        out = []
        for (c, k, p), m in sorted(self.state.memberships.items()):
            if c == self.council_id and k == case_id:
                out.append(CaseMember(p, self.state.people[(c, p)].display_name, m.role))
        return out

    def cases_of(self, person_id):
        return [MyCase(m.case_id, self.case(m.case_id).reference, self.case(m.case_id).title, m.role)
                for m in self.memberships_of(person_id)]

    def put_person(self, person):
        self.state.people[(self.council_id, person.person_id)] = person

    def put_case(self, case):
        self.state.cases[(self.council_id, case.case_id)] = case

    def put_membership(self, membership):
        self.state.memberships[(self.council_id, membership.case_id, membership.person_id)] = membership

    def delete_membership(self, case_id, person_id):
        del self.state.memberships[(self.council_id, case_id, person_id)]

    def publish(self, event_type, data, story=None):
        assert self.in_transaction, "events only inside a transaction"
        self.state.outbox.append({"type": event_type, "council_id": self.council_id, "data": data, "story": story})

    def audit(self, action, *, case_id=None, record_id=None, outcome="ok"):
        self.state.audit.append({"actor": self.who.subject, "council_id": self.council_id, "action": action,
                                 "case_id": case_id, "record_id": record_id, "outcome": outcome})


class FakeCaseStore(CaseStore):
    def __init__(self):
        self.state = State()

    def atomically(self, who: Identity, fn: Callable[[UnitOfWork], T]) -> T:
        working = copy.deepcopy(self.state)
        result = fn(FakeUnitOfWork(working, who, in_transaction=True))
        self.state = working  # committed only when fn returned
        return result

    def reading(self, who):
        return FakeUnitOfWork(self.state, who, in_transaction=False)

    def audit_refusal(self, who, action, *, case_id, record_id, outcome):
        self.state.audit.append({"actor": who.subject, "council_id": who.council_id, "action": action,
                                 "case_id": case_id, "record_id": record_id, "outcome": outcome})
