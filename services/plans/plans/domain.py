"""The rules of plans in plain Python: who sees a plan, who writes what, the lifecycle, versions and diffs.

No pymongo, nameko or flask here. The store (``AbstractPlanStore``) applies
``can_see`` as a database query; the integration tests hold the two to the
same answers.

Lifecycle: staff create a plan (a draft), edit the draft, publish it (version
1, 2, ... kept in history); a review on a published plan records the outcome
and opens the next draft from the published content. The family side sees
published content only, never a draft; the young person (or a family member
who may see the plan) comments on goals and says whether they agree with the
current version.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar

from chassis.audience import Viewer
from chassis.audience import can_see as audience_can_see
from chassis.audience import viewer_on as audience_viewer_on
from chassis.audited import audited
from chassis.identity import FAMILY_CASE_ROLES, Identity
from chassis.problems import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unprocessable,
)

PLAN_KINDS = ("pathway", "leaving_care", "child_in_need", "child_protection")
AREAS = ("accommodation", "education_training_employment", "health", "money", "relationships_family",
         "identity", "practical_skills")
ACTION_STATUSES = ("not_started", "in_progress", "done", "dropped")
AUDIENCE_KINDS = ("case", "staff", "named")
KIND_WORDS = {"pathway": "Pathway plan", "leaving_care": "Leaving-care plan",
              "child_in_need": "Child-in-need plan", "child_protection": "Child-protection plan"}
GOAL_FIELDS = ("area", "title", "description")
ACTION_FIELDS = ("goal_id", "what", "who", "by_when", "status")
MAX_PLANS_PER_CASE = 200
MAX_COMMENTS_PER_GOAL = 1000
MAX_AGREEMENTS_PER_VERSION = 500
STORY_TITLE_MAX = 200
NOT_FOUND = "There is no such case or plan, or it is not yours to see."

T = TypeVar("T")


def viewer_on(who: Identity, case_id: str) -> Viewer:
    """The caller as a viewer of ``case_id``; 404 when they hold no role on it (never reveal it exists)."""
    return audience_viewer_on(who, case_id, NOT_FOUND)


# --- the visibility rule --------------------------------------------------------------------------
def can_see(plan: dict[str, Any], person_id: str, role: str | None) -> bool:
    """Whether a person with ``role`` on the plan's case sees the plan.

    The author always sees what they wrote. Staff on the case see every plan
    except where they are excluded. A family-side member sees a plan only once
    it is published, and then as its audience says: "case" unless excluded,
    "named" only when listed and not excluded, never "staff".
    """
    author_id = (plan.get("created_by") or {}).get("person_id")
    if role in FAMILY_CASE_ROLES and plan.get("current_version", 0) < 1:
        return author_id == person_id  # a draft: staff and its author only
    return audience_can_see(plan["audience"], person_id, role, author_id)


def sees_audience_details(plan: dict[str, Any], viewer: Viewer) -> bool:
    """Who is named or excluded is itself sensitive: only staff and the author see it."""
    return viewer.is_staff or (plan.get("created_by") or {}).get("person_id") == viewer.person_id


def default_audience(subject_person_id: str | None) -> dict[str, Any]:
    """The young person the plan is for, and staff (staff see every plan); never parents by default."""
    if subject_person_id:
        return {"kind": "named", "people": [subject_person_id], "exclude": []}
    return {"kind": "staff", "people": [], "exclude": []}


def normalise_audience(raw: dict[str, Any]) -> dict[str, Any]:
    """The audience as stored: a kind and two de-duplicated id lists; people only for "named"."""
    kind = raw.get("kind")
    if kind not in AUDIENCE_KINDS:
        raise InvalidInput("The audience kind must be case, staff or named.")
    people = list(dict.fromkeys(raw.get("people") or []))
    exclude = list(dict.fromkeys(raw.get("exclude") or []))
    if kind == "named" and not people:
        raise InvalidInput("A named audience needs at least one person.")
    if kind != "named" and people:
        raise InvalidInput("Only a named audience lists people.")
    return {"kind": kind, "people": people, "exclude": exclude}


# --- content: sections, goals, actions ----------------------------------------------------------------
def parse_date(value: Any, what: str) -> str:
    """A calendar date as ``YYYY-MM-DD`` (stored as text: it sorts and compares as a date)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} is a date like 2026-09-30.")
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError as exc:
        raise InvalidInput(f"{what} is a date like 2026-09-30.") from exc


def new_id() -> str:
    return uuid.uuid4().hex


def _who(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict) or len(raw) != 1 or not ({"person_id", "role"} & set(raw)):
        raise InvalidInput("Who does an action: a person id or a role in words, one of the two.")
    key = "person_id" if "person_id" in raw else "role"
    value = raw[key]
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("Who does an action: a person id or a role in words, one of the two.")
    return {key: value.strip() if key == "role" else value}


def normalise_content(raw: dict[str, Any], make_id: Callable[[], str] = new_id) -> dict[str, Any]:
    """A draft's content as stored: sections in the order of ``AREAS``, each goal and action with an id.

    Goals and actions sent with an id keep it (that is how a goal is followed from version to
    version); new ones get a fresh id. Ids are unique across the plan.
    """
    review_due = raw.get("review_due")
    sections_in = raw.get("sections") or []
    by_area: dict[str, list[dict[str, Any]]] = {}
    goal_ids: set[str] = set()
    action_ids: set[str] = set()
    for section in sections_in:
        area = section.get("area")
        if area not in AREAS:
            raise InvalidInput(f"There is no plan area {area!r}.")
        if area in by_area:
            raise InvalidInput(f"The area {area} appears twice; put all its goals in one section.")
        goals = []
        for goal in section.get("goals") or []:
            goal_id = goal.get("goal_id") or make_id()
            if goal_id in goal_ids:
                raise InvalidInput(f"The goal id {goal_id} appears twice.")
            goal_ids.add(goal_id)
            actions = []
            for action in goal.get("actions") or []:
                action_id = action.get("action_id") or make_id()
                if action_id in action_ids:
                    raise InvalidInput(f"The action id {action_id} appears twice.")
                action_ids.add(action_id)
                status = action.get("status", "not_started")
                if status not in ACTION_STATUSES:
                    raise InvalidInput("An action's status is not_started, in_progress, done or dropped.")
                actions.append({
                    "action_id": action_id,
                    "what": action["what"],
                    "who": _who(action.get("who")),
                    "by_when": parse_date(action.get("by_when"), "by_when"),
                    "status": status,
                })
            goals.append({"goal_id": goal_id, "title": goal["title"], "description": goal.get("description") or "",
                          "actions": actions})
        by_area[area] = goals
    return {
        "review_due": parse_date(review_due, "review_due") if review_due is not None else None,
        "sections": [{"area": area, "goals": by_area[area]} for area in AREAS if area in by_area],
    }


def goal_count(content: dict[str, Any]) -> int:
    return sum(len(s["goals"]) for s in content.get("sections", ()))


def find_goal(content: dict[str, Any], goal_id: str) -> dict[str, Any] | None:
    for section in content.get("sections", ()):
        for goal in section["goals"]:
            if goal["goal_id"] == goal_id:
                return goal
    return None


def check_publishable(draft: dict[str, Any] | None) -> None:
    if draft is None:
        raise Conflict("There is no draft to publish; the plan is already published as it stands.")
    if not draft.get("review_due"):
        raise Unprocessable("Set a review date (review_due) before publishing the plan.")
    if goal_count(draft) == 0:
        raise Unprocessable("A plan needs at least one goal to be published.")


# --- what changed between two versions ------------------------------------------------------------
def _index(content: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    goals: dict[str, dict[str, Any]] = {}
    actions: dict[str, dict[str, Any]] = {}
    for section in content.get("sections", ()):
        for goal in section["goals"]:
            goals[goal["goal_id"]] = {"area": section["area"], **{k: goal[k] for k in ("title", "description")}}
            for action in goal["actions"]:
                actions[action["action_id"]] = {"goal_id": goal["goal_id"], **{k: action[k] for k in ACTION_FIELDS
                                                                             if k != "goal_id"}}
    return goals, actions


def _changes(before: dict[str, Any], after: dict[str, Any], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"field": f, "before": before[f], "after": after[f]} for f in fields if before[f] != after[f]]


def diff_contents(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Goals and actions added, removed and changed (field by field, before and after), old -> new."""
    old_goals, old_actions = _index(old)
    new_goals, new_actions = _index(new)

    def goal_brief(goal_id: str, goal: dict[str, Any]) -> dict[str, Any]:
        return {"goal_id": goal_id, "area": goal["area"], "title": goal["title"]}

    def action_brief(action_id: str, action: dict[str, Any]) -> dict[str, Any]:
        return {"action_id": action_id, "goal_id": action["goal_id"], "what": action["what"]}

    goals = {
        "added": [goal_brief(g, new_goals[g]) for g in new_goals if g not in old_goals],
        "removed": [goal_brief(g, old_goals[g]) for g in old_goals if g not in new_goals],
        "changed": [{**goal_brief(g, new_goals[g]), "changes": ch} for g in new_goals if g in old_goals
                    for ch in [_changes(old_goals[g], new_goals[g], GOAL_FIELDS)] if ch],
    }
    actions = {
        "added": [action_brief(a, new_actions[a]) for a in new_actions if a not in old_actions],
        "removed": [action_brief(a, old_actions[a]) for a in old_actions if a not in new_actions],
        "changed": [{**action_brief(a, new_actions[a]), "changes": ch} for a in new_actions if a in old_actions
                    for ch in [_changes(old_actions[a], new_actions[a], ACTION_FIELDS)] if ch],
    }
    review_due = None
    if old.get("review_due") != new.get("review_due"):
        review_due = {"before": old.get("review_due"), "after": new.get("review_due")}
    return {"goals": goals, "actions": actions, "review_due": review_due}


# --- stories for the timeline -------------------------------------------------------------------------
def _clip(text: str, limit: int = STORY_TITLE_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def story(plan: dict[str, Any], title: str, body: str, occurred_at: datetime) -> dict[str, Any]:
    """What the timeline shows for a plan event: kind "plan", with the plan's own audience."""
    audience = plan["audience"]
    return {"case_id": plan["case_id"], "kind": "plan", "title": _clip(title), "body": body,
            "occurred_at": occurred_at.isoformat(),
            "audience": {"kind": audience["kind"], "people": list(audience["people"]),
                         "exclude": list(audience["exclude"])}}


def plan_words(plan: dict[str, Any]) -> str:
    return f"{KIND_WORDS[plan['kind']]} “{plan['title']}”"


# --- ports ----------------------------------------------------------------------------------------
class AbstractPlanStore(ABC):
    """The repository. Plans are read through the viewer's council, the case and the visibility rule;
    what hangs off a plan (versions, reviews, agreements, comments) is read only after its plan was."""

    @abstractmethod
    def add_plan(self, plan: dict[str, Any]) -> None: ...

    @abstractmethod
    def visible_plans(self, viewer: Viewer, case_id: str, limit: int) -> list[dict[str, Any]]:
        """Newest first by (created_at, plan_id)."""

    @abstractmethod
    def visible_plan(self, viewer: Viewer, case_id: str, plan_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def commit(self, viewer: Viewer, case_id: str, plan_id: str, *, expect: dict[str, Any],
               changes: dict[str, Any], records: list[tuple[str, dict[str, Any]]],
               event: dict[str, Any] | None) -> dict[str, Any]:
        """One all-or-nothing change: the plan updated with ``changes`` only if it still matches ``expect``
        (``current_version``: int, ``draft_open``: bool), ``records`` added ((kind, record): kind is
        version, review, agreement or comment) and ``event`` ({type, data, story}) put in the outbox.
        Raises Conflict when the plan no longer matches. Returns the plan as it now is."""

    @abstractmethod
    def records(self, viewer: Viewer, case_id: str, plan_id: str, kind: str,
                match: dict[str, Any] | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Records of one kind of a plan (already checked visible), oldest first; ``match``: equal fields."""


class Audit(Protocol):
    def record(self, who: Identity, action: str, *, case_id: str | None = None,
               record_id: str | None = None, outcome: str = "ok") -> Any: ...


def utcnow() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


# --- the use cases ------------------------------------------------------------------------------------
class Plans:
    """The plans' operations; every one of them, allowed or not, leaves an audit record."""

    def __init__(self, store: AbstractPlanStore, audit: Audit, clock: Callable[[], datetime] = utcnow,
                 make_id: Callable[[], str] = new_id):
        self.store = store
        self.audit = audit
        self.clock = clock
        self.make_id = make_id

    def _audited(self, who: Identity, action: str, case_id: str, record_id: str | None, fn: Callable[[], T]) -> T:
        return audited(self.audit, who, action, case_id, record_id, fn, "plan_id")

    def _visible(self, viewer: Viewer, case_id: str, plan_id: str) -> dict[str, Any]:
        plan = self.store.visible_plan(viewer, case_id, plan_id)
        if plan is None:
            raise NotFound(NOT_FOUND)
        return plan

    def _staff_plan(self, who: Identity, case_id: str, plan_id: str) -> tuple[Viewer, dict[str, Any]]:
        viewer = viewer_on(who, case_id)
        plan = self._visible(viewer, case_id, plan_id)
        if not viewer.is_staff:
            raise Forbidden("Only staff on the case write and publish plans.")
        return viewer, plan

    def _version(self, viewer: Viewer, plan: dict[str, Any], number: int) -> dict[str, Any]:
        found = self.store.records(viewer, plan["case_id"], plan["plan_id"], "version", {"number": number}, 1)
        if not found:
            raise NotFound(f"Version {number} of this plan has not been published.")
        return found[0]

    # --- plans ---------------------------------------------------------------------------------------
    def list_plans(self, who: Identity, case_id: str) -> tuple[list[dict[str, Any]], Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            return self.store.visible_plans(viewer, case_id, MAX_PLANS_PER_CASE), viewer

        return self._audited(who, "plans.plans.list", case_id, None, run)

    def get_plan(self, who: Identity, case_id: str, plan_id: str) -> tuple[dict[str, Any], Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            return self._visible(viewer, case_id, plan_id), viewer

        return self._audited(who, "plans.plan.read", case_id, plan_id, run)

    def create_plan(self, who: Identity, case_id: str, data: dict[str, Any]) -> tuple[dict[str, Any], Viewer]:
        def run():
            viewer = viewer_on(who, case_id)
            if not viewer.is_staff:
                raise Forbidden("Only staff on the case write plans.")
            if data["kind"] not in PLAN_KINDS:
                raise InvalidInput(f"There is no plan kind {data['kind']!r}.")
            if len(self.store.visible_plans(viewer, case_id, MAX_PLANS_PER_CASE)) >= MAX_PLANS_PER_CASE:
                raise Conflict(f"A case holds at most {MAX_PLANS_PER_CASE} plans.")
            subject = data.get("subject_person_id")
            audience = normalise_audience(data["audience"]) if data.get("audience") else default_audience(subject)
            now = self.clock()
            plan = {
                "plan_id": self.make_id(),
                "council_id": viewer.council_id,
                "case_id": case_id,
                "kind": data["kind"],
                "title": data["title"],
                "subject_person_id": subject,
                "audience": audience,
                "created_by": {"person_id": viewer.person_id, "role": viewer.role},
                "created_at": now,
                "updated_at": now,
                "draft": {**normalise_content(data, self.make_id), "updated_at": now,
                          "updated_by": viewer.person_id},
                "current_version": 0,
                "published": None,
                "review_due": None,
                "last_review": None,
            }
            self.store.add_plan(plan)
            return plan, viewer

        return self._audited(who, "plans.plan.create", case_id, None, run)

    def change_plan(self, who: Identity, case_id: str, plan_id: str,
                    data: dict[str, Any]) -> tuple[dict[str, Any], Viewer]:
        """Staff change the title, the person the plan is for, or who sees it."""
        def run():
            viewer, _ = self._staff_plan(who, case_id, plan_id)
            changes: dict[str, Any] = {k: data[k] for k in ("title", "subject_person_id") if k in data}
            if "audience" in data:
                changes["audience"] = normalise_audience(data["audience"])
            if not changes:
                raise InvalidInput("Send a new title, subject_person_id or audience.")
            changes["updated_at"] = self.clock()
            return self.store.commit(viewer, case_id, plan_id, expect={}, changes=changes, records=[],
                                     event=None), viewer

        return self._audited(who, "plans.plan.change", case_id, plan_id, run)

    def save_draft(self, who: Identity, case_id: str, plan_id: str,
                   data: dict[str, Any]) -> tuple[dict[str, Any], Viewer]:
        """Replace the draft (opening one when the plan stands published)."""
        def run():
            viewer, plan = self._staff_plan(who, case_id, plan_id)
            now = self.clock()
            draft = {**normalise_content(data, self.make_id), "updated_at": now, "updated_by": viewer.person_id}
            return self.store.commit(viewer, case_id, plan_id, expect={"current_version": plan["current_version"]},
                                     changes={"draft": draft, "updated_at": now}, records=[],
                                     event=None), viewer

        return self._audited(who, "plans.draft.save", case_id, plan_id, run)

    def publish(self, who: Identity, case_id: str, plan_id: str) -> tuple[dict[str, Any], Viewer]:
        """The draft becomes the next version; ``plan_published`` goes to the timeline."""
        def run():
            viewer, plan = self._staff_plan(who, case_id, plan_id)
            draft = plan.get("draft")
            check_publishable(draft)
            assert draft is not None
            now = self.clock()
            number = plan["current_version"] + 1
            version = {
                "version_id": self.make_id(),
                "council_id": viewer.council_id,
                "case_id": case_id,
                "plan_id": plan_id,
                "number": number,
                "review_due": draft["review_due"],
                "sections": draft["sections"],
                "published_at": now,
                "published_by": viewer.person_id,
            }
            published = {k: version[k] for k in ("number", "review_due", "sections", "published_at", "published_by")}
            event = {
                "type": "plan_published",
                "data": {"case_id": case_id, "plan_id": plan_id, "plan_kind": plan["kind"], "version": number,
                         "subject_person_id": plan.get("subject_person_id"), "review_due": draft["review_due"],
                         "published_by": viewer.person_id},
                "story": story(plan, f"{plan_words(plan)} published (version {number})",
                               f"Review due on {draft['review_due']}.", now),
            }
            changes = {"draft": None, "current_version": number, "published": published,
                       "review_due": draft["review_due"], "updated_at": now}
            updated = self.store.commit(viewer, case_id, plan_id,
                                        expect={"current_version": plan["current_version"], "draft_open": True},
                                        changes=changes, records=[("version", version)], event=event)
            return updated, viewer

        return self._audited(who, "plans.plan.publish", case_id, plan_id, run)

    # --- versions --------------------------------------------------------------------------------------
    def list_versions(self, who: Identity, case_id: str, plan_id: str) -> list[dict[str, Any]]:
        def run():
            viewer = viewer_on(who, case_id)
            self._visible(viewer, case_id, plan_id)
            return self.store.records(viewer, case_id, plan_id, "version")

        return self._audited(who, "plans.versions.list", case_id, plan_id, run)

    def get_version(self, who: Identity, case_id: str, plan_id: str, number: int) -> dict[str, Any]:
        def run():
            viewer = viewer_on(who, case_id)
            return self._version(viewer, self._visible(viewer, case_id, plan_id), number)

        return self._audited(who, "plans.version.read", case_id, plan_id, run)

    def diff(self, who: Identity, case_id: str, plan_id: str, a: int, b: int) -> dict[str, Any]:
        def run():
            viewer = viewer_on(who, case_id)
            plan = self._visible(viewer, case_id, plan_id)
            old, new = self._version(viewer, plan, a), self._version(viewer, plan, b)
            return {"plan_id": plan_id, "from_version": a, "to_version": b, **diff_contents(old, new)}

        return self._audited(who, "plans.versions.diff", case_id, plan_id, run)

    # --- reviews ---------------------------------------------------------------------------------------
    def review(self, who: Identity, case_id: str, plan_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """Record a review of the published plan and open the next draft from its content."""
        def run():
            viewer, plan = self._staff_plan(who, case_id, plan_id)
            published = plan.get("published")
            if not published:
                raise Conflict("Only a published plan is reviewed; publish it first.")
            if plan.get("draft") is not None:
                raise Conflict("The plan has a draft open already; publish it before the next review.")
            now = self.clock()
            reviewed_on = parse_date(data.get("reviewed_on") or now.date().isoformat(), "reviewed_on")
            next_due = data.get("next_review_due")
            next_due = parse_date(next_due, "next_review_due") if next_due is not None else None
            review = {
                "review_id": self.make_id(),
                "council_id": viewer.council_id,
                "case_id": case_id,
                "plan_id": plan_id,
                "version": plan["current_version"],
                "reviewed_on": reviewed_on,
                "review_due": published.get("review_due"),
                "outcome_notes": data["outcome_notes"],
                "next_review_due": next_due,
                "reviewed_by": viewer.person_id,
                "recorded_at": now,
            }
            draft = {"review_due": next_due, "sections": published["sections"], "updated_at": now,
                     "updated_by": viewer.person_id}
            event = {
                "type": "plan_reviewed",
                "data": {"case_id": case_id, "plan_id": plan_id, "plan_kind": plan["kind"],
                         "version": plan["current_version"], "review_id": review["review_id"],
                         "reviewed_on": reviewed_on, "next_review_due": next_due, "reviewed_by": viewer.person_id},
                "story": story(plan, f"{plan_words(plan)} reviewed (version {plan['current_version']})",
                               data["outcome_notes"], now),
            }
            self.store.commit(viewer, case_id, plan_id,
                              expect={"current_version": plan["current_version"], "draft_open": False},
                              changes={"draft": draft, "updated_at": now,
                                       "last_review": {k: review[k] for k in ("review_id", "version", "reviewed_on")}},
                              records=[("review", review)], event=event)
            return review

        return self._audited(who, "plans.review.create", case_id, plan_id, run)

    def list_reviews(self, who: Identity, case_id: str, plan_id: str) -> list[dict[str, Any]]:
        def run():
            viewer = viewer_on(who, case_id)
            self._visible(viewer, case_id, plan_id)
            return self.store.records(viewer, case_id, plan_id, "review")

        return self._audited(who, "plans.reviews.list", case_id, plan_id, run)

    # --- the young person's say ------------------------------------------------------------------------
    def record_agreement(self, who: Identity, case_id: str, plan_id: str, number: int,
                         data: dict[str, Any]) -> dict[str, Any]:
        """"I agree" or "I don't agree, because…" on the current published version, by the family side."""
        def run():
            viewer = viewer_on(who, case_id)
            plan = self._visible(viewer, case_id, plan_id)
            if not viewer.is_family:
                raise Forbidden("Agreeing or not is for the young person and the family, not staff.")
            self._version(viewer, plan, number)
            if number != plan["current_version"]:
                raise Conflict(f"Version {number} has been replaced by version {plan['current_version']}; "
                               "say whether you agree with the latest one.")
            agreed = data["agreed"]
            reason = (data.get("reason") or "").strip()
            if not agreed and not reason:
                raise InvalidInput("Say why you don't agree (reason).")
            if len(self.store.records(viewer, case_id, plan_id, "agreement", {"version": number},
                                      MAX_AGREEMENTS_PER_VERSION)) >= MAX_AGREEMENTS_PER_VERSION:
                raise Conflict(f"A version takes at most {MAX_AGREEMENTS_PER_VERSION} answers.")
            now = self.clock()
            agreement = {
                "agreement_id": self.make_id(),
                "council_id": viewer.council_id,
                "case_id": case_id,
                "plan_id": plan_id,
                "version": number,
                "person_id": viewer.person_id,
                "role": viewer.role,
                "agreed": agreed,
                "reason": reason,
                "recorded_at": now,
                "recorded_on": now.date().isoformat(),
            }
            said = "Agreed" if agreed else "Not agreed"
            event = {
                "type": "plan_agreed",
                "data": {"case_id": case_id, "plan_id": plan_id, "plan_kind": plan["kind"], "version": number,
                         "agreement_id": agreement["agreement_id"], "person_id": viewer.person_id,
                         "agreed": agreed},
                "story": story(plan, f"{said}: {plan_words(plan)} (version {number})",
                               "" if agreed else "The reasons given are on the plan.", now),
            }
            self.store.commit(viewer, case_id, plan_id, expect={"current_version": number}, changes={},
                              records=[("agreement", agreement)], event=event)
            return agreement

        return self._audited(who, "plans.agreement.create", case_id, plan_id, run)

    def list_agreements(self, who: Identity, case_id: str, plan_id: str, number: int) -> list[dict[str, Any]]:
        """Staff see every answer on a version; a family member sees their own."""
        def run():
            viewer = viewer_on(who, case_id)
            plan = self._visible(viewer, case_id, plan_id)
            self._version(viewer, plan, number)
            match: dict[str, Any] = {"version": number}
            if not viewer.is_staff:
                match["person_id"] = viewer.person_id
            return self.store.records(viewer, case_id, plan_id, "agreement", match, MAX_AGREEMENTS_PER_VERSION)

        return self._audited(who, "plans.agreements.list", case_id, plan_id, run)

    def add_comment(self, who: Identity, case_id: str, plan_id: str, goal_id: str, body: str) -> dict[str, Any]:
        """A comment on a goal of the current published version, by anyone who sees the plan."""
        def run():
            viewer = viewer_on(who, case_id)
            plan = self._visible(viewer, case_id, plan_id)
            published = plan.get("published")
            if not published or find_goal(published, goal_id) is None:
                raise NotFound("There is no such goal in the published plan.")
            if len(self.store.records(viewer, case_id, plan_id, "comment", {"goal_id": goal_id},
                                      MAX_COMMENTS_PER_GOAL)) >= MAX_COMMENTS_PER_GOAL:
                raise Conflict(f"A goal takes at most {MAX_COMMENTS_PER_GOAL} comments.")
            comment = {
                "comment_id": self.make_id(),
                "council_id": viewer.council_id,
                "case_id": case_id,
                "plan_id": plan_id,
                "goal_id": goal_id,
                "version": plan["current_version"],
                "body": body,
                "author": {"person_id": viewer.person_id, "role": viewer.role},
                "created_at": self.clock(),
            }
            self.store.commit(viewer, case_id, plan_id, expect={}, changes={}, records=[("comment", comment)],
                              event=None)
            return comment

        return self._audited(who, "plans.comment.create", case_id, plan_id, run)

    def list_comments(self, who: Identity, case_id: str, plan_id: str, goal_id: str) -> list[dict[str, Any]]:
        def run():
            viewer = viewer_on(who, case_id)
            self._visible(viewer, case_id, plan_id)
            return self.store.records(viewer, case_id, plan_id, "comment", {"goal_id": goal_id},
                                      MAX_COMMENTS_PER_GOAL)

        return self._audited(who, "plans.comments.list", case_id, plan_id, run)
