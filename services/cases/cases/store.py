"""The repository: the only module of the cases service that speaks to MongoDB.

Every document carries ``council_id`` and every query filters on the caller's
council, so the same id in two councils names two unrelated records (unique
indexes are compound: ``(council_id, person_id)``, ``(council_id, case_id)``,
``(council_id, case_id, person_id)``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pymongo import ASCENDING, MongoClient
from pymongo.client_session import ClientSession
from pymongo.database import Database

from chassis.audit import AuditTrail
from chassis.identity import Identity
from chassis.mongo import in_transaction
from chassis.outbox import Outbox
from chassis.problems import NotFound

from .domain import Case, CaseMember, CaseStore, Membership, MyCase, Person, UnitOfWork

T = TypeVar("T")

SERVICE = "cases"
LIST_LIMIT = 1000  # the contract's maxItems on every list


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class MongoUnitOfWork(UnitOfWork):
    def __init__(self, store: MongoCaseStore, who: Identity, session: ClientSession | None):
        if who.council_id is None:
            raise NotFound("Nothing here belongs to a council-less caller.")
        self.council_id = who.council_id
        self.who = who
        self.session = session
        self.people = store.db["people"]
        self.cases = store.db["cases"]
        self.memberships = store.db["memberships"]
        self.outbox = store.outbox
        self.trail = store.trail

    def _key(self, **ids: str) -> dict[str, str]:
        return {"council_id": self.council_id, **ids}

    # reads -------------------------------------------------------------------------
    def person(self, person_id: str) -> Person | None:
        doc = self.people.find_one(self._key(person_id=person_id), session=self.session)
        return Person(doc["person_id"], doc["display_name"], doc["kind"]) if doc else None

    def case(self, case_id: str) -> Case | None:
        doc = self.cases.find_one(self._key(case_id=case_id), session=self.session)
        if not doc:
            return None
        return Case(doc["case_id"], doc["reference"], doc["title"], _aware(doc["opened_at"]))

    def membership(self, case_id: str, person_id: str) -> Membership | None:
        doc = self.memberships.find_one(self._key(case_id=case_id, person_id=person_id), session=self.session)
        return Membership(doc["case_id"], doc["person_id"], doc["role"]) if doc else None

    def memberships_of(self, person_id: str) -> list[Membership]:
        docs = self.memberships.find(self._key(person_id=person_id), session=self.session) \
            .sort([("case_id", ASCENDING)]).limit(LIST_LIMIT)
        return [Membership(d["case_id"], d["person_id"], d["role"]) for d in docs]

    def members_of(self, case_id: str) -> list[CaseMember]:
        docs = list(self.memberships.find(self._key(case_id=case_id), session=self.session)
                    .sort([("person_id", ASCENDING)]).limit(LIST_LIMIT))
        names = {
            p["person_id"]: p["display_name"]
            for p in self.people.find(
                {"council_id": self.council_id, "person_id": {"$in": [d["person_id"] for d in docs]}},
                {"person_id": 1, "display_name": 1}, session=self.session)
        }
        return [CaseMember(d["person_id"], names.get(d["person_id"], d["person_id"]), d["role"]) for d in docs]

    def cases_of(self, person_id: str) -> list[MyCase]:
        roles = {m.case_id: m.role for m in self.memberships_of(person_id)}
        docs = self.cases.find({"council_id": self.council_id, "case_id": {"$in": list(roles)}},
                               session=self.session).sort([("case_id", ASCENDING)])
        return [MyCase(d["case_id"], d["reference"], d["title"], roles[d["case_id"]]) for d in docs]

    # writes ------------------------------------------------------------------------
    def put_person(self, person: Person) -> None:
        now = datetime.now(UTC)
        self.people.update_one(
            self._key(person_id=person.person_id),
            {"$set": {"display_name": person.display_name, "kind": person.kind, "updated_at": now},
             "$setOnInsert": {"created_at": now}},
            upsert=True, session=self.session,
        )

    def put_case(self, case: Case) -> None:
        now = datetime.now(UTC)
        self.cases.update_one(
            self._key(case_id=case.case_id),
            {"$set": {"reference": case.reference, "title": case.title, "updated_at": now},
             "$setOnInsert": {"opened_at": case.opened_at}},
            upsert=True, session=self.session,
        )

    def put_membership(self, membership: Membership) -> None:
        now = datetime.now(UTC)
        self.memberships.update_one(
            self._key(case_id=membership.case_id, person_id=membership.person_id),
            {"$set": {"role": membership.role, "updated_at": now}, "$setOnInsert": {"added_at": now}},
            upsert=True, session=self.session,
        )

    def delete_membership(self, case_id: str, person_id: str) -> None:
        self.memberships.delete_one(self._key(case_id=case_id, person_id=person_id), session=self.session)

    def publish(self, event_type: str, data: dict[str, Any], story: dict[str, Any] | None = None) -> None:
        if self.session is None:
            raise RuntimeError("events are published only inside a transaction")
        self.outbox.add(self.session, event_type, self.council_id, data, story)

    def audit(self, action: str, *, case_id: str | None = None, record_id: str | None = None,
              outcome: str = "ok") -> None:
        self.trail.record(self.who, action, case_id=case_id, record_id=record_id, outcome=outcome,
                          session=self.session)


class MongoCaseStore(CaseStore):
    def __init__(self, client: MongoClient, db: Database):
        self.client = client
        self.db = db
        self.outbox = Outbox(db, SERVICE)
        self.trail = AuditTrail(db, SERVICE)

    def ensure_indexes(self) -> None:
        self.db["people"].create_index([("council_id", ASCENDING), ("person_id", ASCENDING)], unique=True)
        self.db["cases"].create_index([("council_id", ASCENDING), ("case_id", ASCENDING)], unique=True)
        self.db["memberships"].create_index(
            [("council_id", ASCENDING), ("case_id", ASCENDING), ("person_id", ASCENDING)], unique=True)
        self.db["memberships"].create_index([("council_id", ASCENDING), ("person_id", ASCENDING)])
        self.outbox.ensure_indexes()
        self.trail.ensure_indexes()

    def atomically(self, who: Identity, fn: Callable[[UnitOfWork], T]) -> T:
        return in_transaction(self.client, lambda session: fn(MongoUnitOfWork(self, who, session)))

    def reading(self, who: Identity) -> UnitOfWork:
        return MongoUnitOfWork(self, who, None)

    def audit_refusal(self, who: Identity, action: str, *, case_id: str | None, record_id: str | None,
                      outcome: str) -> None:
        self.trail.record(who, action, case_id=case_id, record_id=record_id, outcome=outcome)
