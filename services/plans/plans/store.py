"""The repository: the only module that speaks to MongoDB.

Plans are read with the viewer's council, the case and the visibility rule
(``visibility_filter``, the database form of ``domain.can_see``). Versions,
reviews, agreements and comments are read, after their plan was, by council,
case and plan. A change and its event are written in one transaction
(``chassis.outbox``).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, MongoClient, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database

from chassis.audience import audience_filter
from chassis.identity import FAMILY_CASE_ROLES
from chassis.mongo import in_transaction
from chassis.outbox import Outbox
from chassis.problems import Conflict

from .domain import AbstractPlanStore, Viewer

SERVICE = "plans"
# record kind -> (collection, id field, order)
RECORDS = {
    "version": ("versions", "version_id", [("number", ASCENDING)]),
    "review": ("reviews", "review_id", [("recorded_at", ASCENDING), ("_id", ASCENDING)]),
    "agreement": ("agreements", "agreement_id", [("recorded_at", ASCENDING), ("_id", ASCENDING)]),
    "comment": ("comments", "comment_id", [("created_at", ASCENDING), ("_id", ASCENDING)]),
}


def visibility_filter(person_id: str, role: str | None) -> dict[str, Any]:
    """The Mongo condition for "``person_id`` with ``role`` on the case may see this plan"."""
    own = "created_by.person_id"
    if role in FAMILY_CASE_ROLES:  # the family side never sees a draft, unless they wrote it
        published = {"current_version": {"$gte": 1}}
        return {"$or": [{own: person_id}, {**published, **audience_filter(person_id, role, author_field=None)}]}
    return audience_filter(person_id, role, author_field=own)


def _out(doc: dict[str, Any], id_field: str) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k != "_id"}
    out[id_field] = doc["_id"]
    return out


def _doc(record: dict[str, Any], id_field: str) -> dict[str, Any]:
    doc = {k: v for k, v in record.items() if k != id_field}
    doc["_id"] = record[id_field]
    return doc


class MongoPlanStore(AbstractPlanStore):
    def __init__(self, client: MongoClient, db: Database):
        self.client = client
        self.db = db
        self.plans = db["plans"]
        self.outbox = Outbox(db, SERVICE)

    def ensure_indexes(self) -> None:
        self.plans.create_index([("council_id", ASCENDING), ("case_id", ASCENDING),
                                 ("created_at", DESCENDING), ("_id", DESCENDING)])
        self.db["versions"].create_index([("council_id", ASCENDING), ("plan_id", ASCENDING), ("number", ASCENDING)],
                                         unique=True, name="one_version_number_per_plan")
        for kind in ("review", "agreement", "comment"):
            collection, _, order = RECORDS[kind]
            self.db[collection].create_index([("council_id", ASCENDING), ("case_id", ASCENDING),
                                              ("plan_id", ASCENDING), *order])
        self.outbox.ensure_indexes()

    def _scope(self, viewer: Viewer, case_id: str) -> dict[str, Any]:
        return {"council_id": viewer.council_id, "case_id": case_id, **visibility_filter(viewer.person_id, viewer.role)}

    # --- plans ---------------------------------------------------------------------------------------
    def add_plan(self, plan: dict[str, Any]) -> None:
        self.plans.insert_one(_doc(plan, "plan_id"))

    def visible_plans(self, viewer: Viewer, case_id: str, limit: int) -> list[dict[str, Any]]:
        docs = self.plans.find(self._scope(viewer, case_id)).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
        return [_out(d, "plan_id") for d in docs.limit(limit)]

    def visible_plan(self, viewer: Viewer, case_id: str, plan_id: str) -> dict[str, Any] | None:
        doc = self.plans.find_one({"_id": plan_id, **self._scope(viewer, case_id)})
        return _out(doc, "plan_id") if doc else None

    def commit(self, viewer: Viewer, case_id: str, plan_id: str, *, expect: dict[str, Any],
               changes: dict[str, Any], records: list[tuple[str, dict[str, Any]]],
               event: dict[str, Any] | None) -> dict[str, Any]:
        query: dict[str, Any] = {"_id": plan_id, **self._scope(viewer, case_id)}
        if "current_version" in expect:
            query["current_version"] = expect["current_version"]
        if "draft_open" in expect:
            query["draft"] = {"$ne": None} if expect["draft_open"] else None

        def write(session: ClientSession) -> dict[str, Any]:
            if changes:
                doc = self.plans.find_one_and_update(query, {"$set": changes}, session=session,
                                                     return_document=ReturnDocument.AFTER)
            else:
                doc = self.plans.find_one(query, session=session)
            if doc is None:
                raise Conflict("The plan changed while you were working on it; load it again and retry.")
            for kind, record in records:
                collection, id_field, _ = RECORDS[kind]
                self.db[collection].insert_one(_doc(record, id_field), session=session)
            if event is not None:
                self.outbox.add(session, event["type"], viewer.council_id, event["data"], event.get("story"))
            return _out(doc, "plan_id")

        return in_transaction(self.client, write)

    def records(self, viewer: Viewer, case_id: str, plan_id: str, kind: str,
                match: dict[str, Any] | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        collection, id_field, order = RECORDS[kind]
        query = {**(match or {}), "council_id": viewer.council_id, "case_id": case_id, "plan_id": plan_id}
        return [_out(d, id_field) for d in self.db[collection].find(query).sort(order).limit(limit)]
