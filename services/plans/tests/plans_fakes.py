"""In-memory stand-ins for the plans store and audit trail (same abstract base as the Mongo store)."""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from chassis.identity import Identity
from chassis.problems import Conflict
from plans.domain import AbstractPlanStore, Viewer, can_see

ID_FIELDS = {"version": "version_id", "review": "review_id", "agreement": "agreement_id", "comment": "comment_id"}


class FakePlanStore(AbstractPlanStore):
    def __init__(self):
        self.plans: dict[str, dict[str, Any]] = {}
        self.stored: dict[str, list[dict[str, Any]]] = {k: [] for k in ID_FIELDS}
        self.events: list[dict[str, Any]] = []

    def _visible(self, viewer: Viewer, case_id: str) -> list[dict[str, Any]]:
        return [p for p in self.plans.values() if p["council_id"] == viewer.council_id and p["case_id"] == case_id
                and can_see(p, viewer.person_id, viewer.role)]

    def add_plan(self, plan):
        self.plans[plan["plan_id"]] = copy.deepcopy(plan)

    def visible_plans(self, viewer, case_id, limit):
        found = sorted(self._visible(viewer, case_id), key=lambda p: (p["created_at"], p["plan_id"]), reverse=True)
        return copy.deepcopy(found[:limit])

    def visible_plan(self, viewer, case_id, plan_id):
        found = [p for p in self._visible(viewer, case_id) if p["plan_id"] == plan_id]
        return copy.deepcopy(found[0]) if found else None

    def commit(self, viewer, case_id, plan_id, *, expect, changes, records, event):
        plan = next((p for p in self._visible(viewer, case_id) if p["plan_id"] == plan_id), None)
        if plan is None or ("current_version" in expect and plan["current_version"] != expect["current_version"]) \
                or ("draft_open" in expect and (plan.get("draft") is not None) != expect["draft_open"]):
            raise Conflict("The plan changed while you were working on it; load it again and retry.")
        plan.update(copy.deepcopy(changes))
        for kind, record in records:
            self.stored[kind].append(copy.deepcopy(record))
        if event is not None:
            self.events.append({**copy.deepcopy(event), "council_id": viewer.council_id})
        return copy.deepcopy(plan)

    def records(self, viewer, case_id, plan_id, kind, match=None, limit=1000):
        found = [r for r in self.stored[kind] if r["council_id"] == viewer.council_id and r["case_id"] == case_id
                 and r["plan_id"] == plan_id and all(r.get(k) == v for k, v in (match or {}).items())]
        return copy.deepcopy(found[:limit])


class FakeAudit:
    def __init__(self):
        self.records: list[dict[str, Any]] = []

    def record(self, who: Identity, action: str, *, case_id=None, record_id=None, outcome="ok"):
        self.records.append({"actor": who.subject, "council_id": who.council_id, "action": action,
                             "case_id": case_id, "record_id": record_id, "outcome": outcome})


class TickingClock:
    def __init__(self, start: datetime = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)):
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def counter_ids(prefix: str = "id"):
    numbers = itertools.count(1)
    return lambda: f"{prefix}{next(numbers):04d}"
