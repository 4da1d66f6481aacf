"""marshmallow schemas: the API's output shapes and the events' data payloads.

They dump the domain's dataclasses into the plain JSON the contract
(contracts/cases.yaml, contracts/events/cases.*.json) describes.
"""

from __future__ import annotations

from marshmallow import Schema, fields


class PersonSchema(Schema):
    person_id = fields.String(required=True)
    display_name = fields.String(required=True)
    kind = fields.String(required=True)


class CaseSchema(Schema):
    case_id = fields.String(required=True)
    reference = fields.String(required=True)
    title = fields.String(required=True)
    opened_at = fields.DateTime(required=True, format="iso")


class CaseMemberSchema(Schema):
    person_id = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True)


class CaseDetailSchema(CaseSchema):
    members = fields.List(fields.Nested(CaseMemberSchema), required=True)


class MembershipSchema(Schema):
    case_id = fields.String(required=True)
    person_id = fields.String(required=True)
    role = fields.String(required=True)


class CaseRoleSchema(Schema):
    """One item of GET /people/{person_id}/memberships."""

    case_id = fields.String(required=True)
    role = fields.String(required=True)


class MyCaseSchema(Schema):
    case_id = fields.String(required=True)
    reference = fields.String(required=True)
    title = fields.String(required=True)
    role = fields.String(required=True)


person_out = PersonSchema()
case_out = CaseSchema()
case_member_out = CaseMemberSchema()
membership_out = MembershipSchema()
case_role_out = CaseRoleSchema(many=True)
my_case_out = MyCaseSchema(many=True)
