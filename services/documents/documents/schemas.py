"""marshmallow schemas: documents and versions as the API shows them (never a stored name or file id)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields


class PersonSchema(Schema):
    person_id = fields.String()
    role = fields.String()


class AudienceOutSchema(Schema):
    kind = fields.String()
    people = fields.List(fields.String())
    exclude = fields.List(fields.String())


class DeletedSchema(Schema):
    at = fields.DateTime()
    by = fields.String()


class VersionOutSchema(Schema):
    version = fields.Integer()
    label = fields.String()
    media_type = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    scan_status = fields.String()
    uploaded_by = fields.Nested(PersonSchema)
    uploaded_at = fields.DateTime()


class DocumentOutSchema(Schema):
    document_id = fields.String()
    case_id = fields.String()
    audience = fields.Nested(AudienceOutSchema)
    uploaded_by = fields.Nested(PersonSchema)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    deleted = fields.Nested(DeletedSchema, allow_none=True)
    versions = fields.List(fields.Nested(VersionOutSchema))


document_out = DocumentOutSchema()
version_out = VersionOutSchema()


def shown_document(document: dict[str, Any], with_versions: bool, audience_details: bool) -> dict[str, Any]:
    """A document as a caller sees it: the latest version's facts on top, the audience's names only when
    the caller may know them, every version only on single-document answers."""
    out = document_out.dump(document)
    latest = version_out.dump(document["versions"][-1])
    out.update({k: latest[k] for k in ("label", "media_type", "size", "sha256", "scan_status")})
    out["version"] = latest["version"]
    if not with_versions:
        out.pop("versions")
    if not audience_details:
        out["audience"] = {"kind": document["audience"]["kind"]}
    return out
