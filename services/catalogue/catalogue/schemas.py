"""marshmallow schemas: stored documents, API answers and event payloads.

API schemas dump the domain records (``catalogue.domain``) into the shapes of
contracts/catalogue.yaml; event schemas dump the ``data`` of the events in
contracts/events/catalogue.*.json.
"""

from __future__ import annotations

from marshmallow import Schema, fields


def _iso(value):
    return value.isoformat() if value is not None else None


# --- stored documents --------------------------------------------------------------------


class CouncilDoc(Schema):
    """``councils``: one per council, ``_id`` = council id."""

    _id = fields.String(required=True)
    name = fields.String(required=True)
    created_at = fields.Raw(required=True)
    updated_at = fields.Raw(required=True)


class ToolDoc(Schema):
    """``tools``: one per tool, ``_id`` = tool id, holding the current version's manifest."""

    _id = fields.String(required=True)
    version = fields.String(required=True)
    manifest = fields.Dict(required=True)
    published_at = fields.Raw(required=True)
    published_by = fields.String(required=True)


class ToolVersionDoc(Schema):
    """``tool_versions``: every published version, ``_id`` = ``<tool_id>@<version>``; never changed."""

    _id = fields.String(required=True)
    tool_id = fields.String(required=True)
    version = fields.String(required=True)
    manifest = fields.Dict(required=True)
    published_at = fields.Raw(required=True)
    published_by = fields.String(required=True)


class EnablementDoc(Schema):
    """``enablements``: a tool's state in a council, ``_id`` = ``<council_id>/<tool_id>``; never deleted."""

    _id = fields.String(required=True)
    council_id = fields.String(required=True)
    tool_id = fields.String(required=True)
    enabled = fields.Boolean(required=True)
    audiences = fields.List(fields.String(), required=True)
    scopes = fields.List(fields.String(), required=True)
    changed_at = fields.Raw(required=True)
    changed_by = fields.String(required=True)
    revision = fields.Integer(required=True)


class HistoryDoc(Schema):
    """``enablement_history``: append-only, one per enable/disable."""

    _id = fields.String(required=True)
    council_id = fields.String(required=True)
    tool_id = fields.String(required=True)
    revision = fields.Integer(required=True)
    action = fields.String(required=True)
    audiences = fields.List(fields.String(), required=True)
    scopes = fields.List(fields.String(), required=True)
    by = fields.String(required=True)
    at = fields.Raw(required=True)


# --- API answers ---------------------------------------------------------------------------


class ToolSummarySchema(Schema):
    tool_id = fields.String()
    name = fields.Function(lambda t: t.manifest["name"])
    summary = fields.Function(lambda t: t.manifest["summary"])
    vendor = fields.Function(lambda t: t.manifest["vendor"])
    version = fields.String()
    audiences = fields.List(fields.String())
    scopes = fields.List(fields.String())
    runs_at = fields.Function(lambda t: t.manifest["runs_at"])
    published_at = fields.Function(lambda t: _iso(t.published_at))


class ToolVersionSchema(Schema):
    version = fields.String()
    published_at = fields.Function(lambda v: _iso(v.published_at))
    published_by = fields.String()


class ToolSchema(Schema):
    """Dumps a ``domain.ToolDetail``."""

    tool_id = fields.Function(lambda d: d.tool.tool_id)
    name = fields.Function(lambda d: d.tool.manifest["name"])
    summary = fields.Function(lambda d: d.tool.manifest["summary"])
    version = fields.Function(lambda d: d.tool.version)
    manifest = fields.Function(lambda d: d.tool.manifest)
    versions = fields.List(fields.Nested(ToolVersionSchema))
    published_at = fields.Function(lambda d: _iso(d.tool.published_at))


class CouncilSchema(Schema):
    council_id = fields.String()
    name = fields.String()
    created_at = fields.Function(lambda c: _iso(c.created_at))
    updated_at = fields.Function(lambda c: _iso(c.updated_at))


class CouncilToolSchema(Schema):
    """Dumps a ``domain.CouncilTool``."""

    tool_id = fields.Function(lambda ct: ct.tool.tool_id)
    name = fields.Function(lambda ct: ct.tool.manifest["name"])
    summary = fields.Function(lambda ct: ct.tool.manifest["summary"])
    version = fields.Function(lambda ct: ct.tool.version)
    manifest_audiences = fields.Function(lambda ct: ct.tool.audiences)
    manifest_scopes = fields.Function(lambda ct: ct.tool.scopes)
    enabled = fields.Boolean()
    audiences = fields.Function(lambda ct: list(ct.enablement.audiences) if ct.enabled else [])
    scopes = fields.Function(lambda ct: list(ct.enablement.scopes) if ct.enabled else [])
    changed_at = fields.Function(lambda ct: _iso(ct.enablement.changed_at) if ct.enablement else None)
    changed_by = fields.Function(lambda ct: ct.enablement.changed_by if ct.enablement else None)


class EnablementSchema(Schema):
    council_id = fields.String()
    tool_id = fields.String()
    enabled = fields.Boolean()
    audiences = fields.List(fields.String())
    scopes = fields.List(fields.String())
    changed_at = fields.Function(lambda e: _iso(e.changed_at))
    changed_by = fields.String()


class HistoryRecordSchema(Schema):
    action = fields.String()
    audiences = fields.List(fields.String())
    scopes = fields.List(fields.String())
    by = fields.String()
    at = fields.Function(lambda h: _iso(h.at))


class EnabledToolSchema(Schema):
    """Dumps a ``domain.EnabledTool``."""

    tool_id = fields.Function(lambda e: e.tool.tool_id)
    name = fields.Function(lambda e: e.tool.manifest["name"])
    summary = fields.Function(lambda e: e.tool.manifest["summary"])
    version = fields.Function(lambda e: e.tool.version)
    audiences = fields.List(fields.String())
    scopes = fields.List(fields.String())
    runs_at = fields.Function(lambda e: e.tool.manifest["runs_at"])


class OidcSettingsSchema(Schema):
    """Dumps a ``domain.OidcSettings``."""

    issuer = fields.String()
    client_id = fields.String()
    allowed_domains = fields.List(fields.String())
    client_secret_env = fields.String(allow_none=True)


class SignInSettingsSchema(Schema):
    """Dumps a ``domain.SignInSettings``."""

    council_id = fields.String()
    oidc = fields.Nested(OidcSettingsSchema, allow_none=True)
    staff_totp_required = fields.Boolean()
    updated_at = fields.Function(lambda s: _iso(s.updated_at) if s.updated_at else None)
    updated_by = fields.String(allow_none=True)


# --- event payloads (the ``data`` of the envelope) ------------------------------------------------


class ToolEnabledData(Schema):
    """``catalogue.tool_enabled``: a tool's audiences and granted scopes in a council, now."""

    tool_id = fields.String(required=True)
    audiences = fields.List(fields.String(), required=True)
    scopes = fields.List(fields.String(), required=True)
    by = fields.String(required=True)


class ToolDisabledData(Schema):
    """``catalogue.tool_disabled``."""

    tool_id = fields.String(required=True)
    by = fields.String(required=True)
