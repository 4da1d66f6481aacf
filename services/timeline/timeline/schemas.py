"""marshmallow schemas: the story another tool's event carries, and entries/comments as the API shows them."""

from __future__ import annotations

from typing import Any

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates_schema,
)

from .domain import AUDIENCE_KINDS, STORY_KINDS

ID = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
COUNCIL_ID = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class StoryAudienceSchema(Schema):
    class Meta:
        unknown = RAISE

    kind = fields.String(required=True, validate=validate.OneOf(AUDIENCE_KINDS))
    people = fields.List(fields.String(validate=ID), load_default=list, validate=validate.Length(max=100))
    exclude = fields.List(fields.String(validate=ID), load_default=list, validate=validate.Length(max=100))

    @validates_schema
    def people_only_when_named(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["kind"] == "named" and not data["people"]:
            raise ValidationError("a named audience needs people", "people")
        if data["kind"] != "named" and data["people"]:
            raise ValidationError("only a named audience lists people", "people")


class StorySchema(Schema):
    """The ``story`` of an event envelope: what the timeline shows for that fact."""

    class Meta:
        unknown = RAISE

    case_id = fields.String(required=True, validate=ID)
    kind = fields.String(required=True, validate=validate.OneOf(sorted(STORY_KINDS)))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    body = fields.String(load_default="", validate=validate.Length(max=20000))
    occurred_at = fields.AwareDateTime(load_default=None)
    audience = fields.Nested(StoryAudienceSchema, load_default=lambda: {"kind": "case", "people": [], "exclude": []})


class EnvelopeSchema(Schema):
    """The parts of an event envelope the timeline relies on (the rest is the publisher's business)."""

    id = fields.String(required=True, validate=validate.Length(min=1, max=100))
    type = fields.String(required=True, validate=validate.Length(min=1, max=100))
    source = fields.String(required=True, validate=validate.Length(min=1, max=100))
    council_id = fields.String(required=True, validate=COUNCIL_ID)
    occurred_at = fields.AwareDateTime(required=True)
    story = fields.Nested(StorySchema, allow_none=True, load_default=None)
    data = fields.Raw(load_default=None)


def load_envelope(envelope: dict[str, Any]) -> dict[str, Any]:
    """Validate an envelope (``ValidationError`` when it breaks the story contract); the parsed envelope."""
    if not isinstance(envelope, dict):
        raise ValidationError("an event envelope is a JSON object")
    return EnvelopeSchema(unknown=EXCLUDE).load(envelope)


class AuthorSchema(Schema):
    person_id = fields.String()
    role = fields.String()


class SourceSchema(Schema):
    service = fields.String()
    event_type = fields.String()
    event_id = fields.String()


class AudienceOutSchema(Schema):
    kind = fields.String()
    people = fields.List(fields.String())
    exclude = fields.List(fields.String())


class EntryOutSchema(Schema):
    entry_id = fields.String()
    council_id = fields.String()
    case_id = fields.String()
    kind = fields.String()
    title = fields.String()
    body = fields.String()
    occurred_at = fields.DateTime()
    recorded_at = fields.DateTime()
    edited_at = fields.DateTime(allow_none=True)
    author = fields.Nested(AuthorSchema)
    source = fields.Nested(SourceSchema)
    audience = fields.Nested(AudienceOutSchema)
    comment_count = fields.Integer()


class CommentOutSchema(Schema):
    comment_id = fields.String()
    entry_id = fields.String()
    case_id = fields.String()
    body = fields.String()
    author = fields.Nested(AuthorSchema)
    created_at = fields.DateTime()


entry_out = EntryOutSchema()
comment_out = CommentOutSchema()
