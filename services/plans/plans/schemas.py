"""marshmallow schemas: plans, versions, reviews, agreements and comments as the API shows them."""

from __future__ import annotations

from marshmallow import Schema, fields


class AudienceOutSchema(Schema):
    kind = fields.String()
    people = fields.List(fields.String())
    exclude = fields.List(fields.String())


class AuthorSchema(Schema):
    person_id = fields.String()
    role = fields.String()


class ActionSchema(Schema):
    action_id = fields.String()
    what = fields.String()
    who = fields.Dict(keys=fields.String(), values=fields.String())
    by_when = fields.String()
    status = fields.String()


class GoalSchema(Schema):
    goal_id = fields.String()
    title = fields.String()
    description = fields.String()
    actions = fields.List(fields.Nested(ActionSchema))


class SectionSchema(Schema):
    area = fields.String()
    goals = fields.List(fields.Nested(GoalSchema))


class DraftSchema(Schema):
    review_due = fields.String(allow_none=True)
    sections = fields.List(fields.Nested(SectionSchema))
    updated_at = fields.DateTime()
    updated_by = fields.String()


class PublishedSchema(Schema):
    number = fields.Integer()
    review_due = fields.String(allow_none=True)
    sections = fields.List(fields.Nested(SectionSchema))
    published_at = fields.DateTime()
    published_by = fields.String()


class LastReviewSchema(Schema):
    review_id = fields.String()
    version = fields.Integer()
    reviewed_on = fields.String()


class PlanOutSchema(Schema):
    plan_id = fields.String()
    council_id = fields.String()
    case_id = fields.String()
    kind = fields.String()
    title = fields.String()
    subject_person_id = fields.String(allow_none=True)
    audience = fields.Nested(AudienceOutSchema)
    status = fields.Function(lambda plan: "draft" if plan.get("draft") is not None else "published")
    current_version = fields.Integer()
    review_due = fields.String(allow_none=True)
    created_by = fields.Nested(AuthorSchema)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    draft = fields.Nested(DraftSchema, allow_none=True)
    published = fields.Nested(PublishedSchema, allow_none=True)
    last_review = fields.Nested(LastReviewSchema, allow_none=True)


class VersionOutSchema(Schema):
    plan_id = fields.String()
    case_id = fields.String()
    number = fields.Integer()
    review_due = fields.String(allow_none=True)
    sections = fields.List(fields.Nested(SectionSchema))
    published_at = fields.DateTime()
    published_by = fields.String()


class VersionSummarySchema(Schema):
    number = fields.Integer()
    review_due = fields.String(allow_none=True)
    published_at = fields.DateTime()
    published_by = fields.String()
    goal_count = fields.Function(lambda v: sum(len(s["goals"]) for s in v["sections"]))


class ReviewOutSchema(Schema):
    review_id = fields.String()
    plan_id = fields.String()
    case_id = fields.String()
    version = fields.Integer()
    reviewed_on = fields.String()
    review_due = fields.String(allow_none=True)
    outcome_notes = fields.String()
    next_review_due = fields.String(allow_none=True)
    reviewed_by = fields.String()
    recorded_at = fields.DateTime()


class AgreementOutSchema(Schema):
    agreement_id = fields.String()
    plan_id = fields.String()
    case_id = fields.String()
    version = fields.Integer()
    person_id = fields.String()
    role = fields.String()
    agreed = fields.Boolean()
    reason = fields.String()
    recorded_at = fields.DateTime()
    recorded_on = fields.String()


class CommentOutSchema(Schema):
    comment_id = fields.String()
    plan_id = fields.String()
    case_id = fields.String()
    goal_id = fields.String()
    version = fields.Integer()
    body = fields.String()
    author = fields.Nested(AuthorSchema)
    created_at = fields.DateTime()


plan_out = PlanOutSchema()
version_out = VersionOutSchema()
version_summary = VersionSummarySchema()
review_out = ReviewOutSchema()
agreement_out = AgreementOutSchema()
comment_out = CommentOutSchema()
