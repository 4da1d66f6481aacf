"""connexion handlers for contracts/plans.yaml: parse, call the domain, shape the answer."""

from __future__ import annotations

from typing import Any

from chassis import subject_access
from chassis.subject_access import Source
from chassis.web import caller, resource

from .domain import Plans, Viewer, sees_audience_details
from .domain import can_see as can_see_plan
from .schemas import (
    agreement_out,
    comment_out,
    plan_out,
    review_out,
    version_out,
    version_summary,
)

JSON = {"Content-Type": "application/json"}  # operations also declare problem+json answers


def _plans() -> Plans:
    return resource("plans")


def _shown(plan: dict[str, Any], viewer: Viewer) -> dict[str, Any]:
    """Staff see the draft and who is named or excluded; the family side sees the published plan only."""
    out = plan_out.dump(plan)
    if not sees_audience_details(plan, viewer):
        out["audience"] = {"kind": plan["audience"]["kind"]}
    if not viewer.is_staff:
        out.pop("draft", None)
        out["status"] = "published"
    return out


def list_plans(case_id: str):
    items, viewer = _plans().list_plans(caller(), case_id)
    return {"items": [_shown(p, viewer) for p in items]}, 200, JSON


def create_plan(case_id: str, body: dict[str, Any]):
    plan, viewer = _plans().create_plan(caller(), case_id, body)
    return _shown(plan, viewer), 201, JSON


def get_plan(case_id: str, plan_id: str):
    plan, viewer = _plans().get_plan(caller(), case_id, plan_id)
    return _shown(plan, viewer), 200, JSON


def change_plan(case_id: str, plan_id: str, body: dict[str, Any]):
    plan, viewer = _plans().change_plan(caller(), case_id, plan_id, body)
    return _shown(plan, viewer), 200, JSON


def save_draft(case_id: str, plan_id: str, body: dict[str, Any]):
    plan, viewer = _plans().save_draft(caller(), case_id, plan_id, body)
    return _shown(plan, viewer), 200, JSON


def publish(case_id: str, plan_id: str):
    plan, viewer = _plans().publish(caller(), case_id, plan_id)
    return _shown(plan, viewer), 200, JSON


def list_versions(case_id: str, plan_id: str):
    versions = _plans().list_versions(caller(), case_id, plan_id)
    return {"items": version_summary.dump(versions, many=True)}, 200, JSON


def get_version(case_id: str, plan_id: str, number: int):
    return version_out.dump(_plans().get_version(caller(), case_id, plan_id, number)), 200, JSON


def diff_versions(case_id: str, plan_id: str, a: int, b: int):
    return _plans().diff(caller(), case_id, plan_id, a, b), 200, JSON


def review(case_id: str, plan_id: str, body: dict[str, Any]):
    return review_out.dump(_plans().review(caller(), case_id, plan_id, body)), 201, JSON


def list_reviews(case_id: str, plan_id: str):
    return {"items": review_out.dump(_plans().list_reviews(caller(), case_id, plan_id), many=True)}, 200, JSON


def record_agreement(case_id: str, plan_id: str, number: int, body: dict[str, Any]):
    agreement = _plans().record_agreement(caller(), case_id, plan_id, number, body)
    return agreement_out.dump(agreement), 201, JSON


def list_agreements(case_id: str, plan_id: str, number: int):
    items = _plans().list_agreements(caller(), case_id, plan_id, number)
    return {"items": agreement_out.dump(items, many=True)}, 200, JSON


def add_comment(case_id: str, plan_id: str, goal_id: str, body: dict[str, Any]):
    return comment_out.dump(_plans().add_comment(caller(), case_id, plan_id, goal_id, body["body"])), 201, JSON


def list_comments(case_id: str, plan_id: str, goal_id: str):
    items = _plans().list_comments(caller(), case_id, plan_id, goal_id)
    return {"items": comment_out.dump(items, many=True)}, 200, JSON


# --- subject access (chassis.subject_access): what plans holds about one person -------------------
def _published_only(plan: dict[str, Any], person_id: str) -> dict[str, Any]:
    """A plan's unpublished draft is its author's (and staff's) working copy, not the family's."""
    if (plan.get("created_by") or {}).get("person_id") == person_id:
        return plan
    return {k: v for k, v in plan.items() if k != "draft"}


def _export_sources() -> list[Source]:
    return [
        Source("plans", "plan", "plan_id", "created_at", can_see=can_see_plan,
               author_fields=("created_by.person_id",), about_fields=("subject_person_id",), redact=_published_only),
        Source("versions", "plan version", "version_id", "published_at", parent="plan", link="plan_id"),
        Source("reviews", "plan review", "review_id", "recorded_at", author_fields=("reviewed_by",),
               parent="plan", link="plan_id"),
        Source("agreements", "plan agreement", "agreement_id", "recorded_at", author_fields=("person_id",),
               parent="plan", link="plan_id"),
        Source("comments", "plan comment", "comment_id", "created_at", author_fields=("author.person_id",),
               parent="plan", link="plan_id"),
    ]


def export_person(person_id: str):
    return subject_access.export_person(person_id, _export_sources())
