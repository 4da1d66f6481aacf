"""HTTP handlers of contracts/catalogue.yaml: parse, call the domain, shape the answer."""

from __future__ import annotations

from flask import Response

from chassis.web import caller, resource

from . import domain
from .schemas import (
    CouncilSchema,
    CouncilToolSchema,
    EnabledToolSchema,
    EnablementSchema,
    HistoryRecordSchema,
    SignInSettingsSchema,
    ToolSchema,
    ToolSummarySchema,
)

# every operation also declares problem+json answers, so connexion needs telling which type a success has
JSON = {"Content-Type": "application/json"}


def _store() -> domain.CatalogueStore:
    return resource("store")


def list_tools():
    tools = domain.list_tools(_store(), caller())
    return {"items": ToolSummarySchema(many=True).dump(tools)}, 200, JSON


def get_tool(tool_id: str):
    return ToolSchema().dump(domain.get_tool(_store(), caller(), tool_id)), 200, JSON


def publish_tool(tool_id: str, body: dict):
    detail, created = domain.publish_tool(_store(), caller(), tool_id, body)
    return ToolSchema().dump(detail), 201 if created else 200, JSON


def list_councils():
    return {"items": CouncilSchema(many=True).dump(domain.list_councils(_store(), caller()))}, 200, JSON


def get_council(council_id: str):
    return CouncilSchema().dump(domain.get_council(_store(), caller(), council_id)), 200, JSON


def put_council(council_id: str, body: dict):
    council, created = domain.put_council(_store(), caller(), council_id, body["name"])
    return CouncilSchema().dump(council), 201 if created else 200, JSON


def list_council_tools(council_id: str):
    items = domain.council_tools(_store(), caller(), council_id)
    return {"items": CouncilToolSchema(many=True).dump(items)}, 200, JSON


def enable_tool(council_id: str, tool_id: str, body: dict):
    enablement = domain.enable_tool(_store(), caller(), council_id, tool_id, body["audiences"], body["scopes"])
    return EnablementSchema().dump(enablement), 200, JSON


def disable_tool(council_id: str, tool_id: str):
    domain.disable_tool(_store(), caller(), council_id, tool_id)
    empty = Response(status=204)
    empty.headers.pop("Content-Type", None)  # no body, so no type (connexion would check a text/html one)
    return empty


def tool_history(council_id: str, tool_id: str):
    records = domain.tool_history(_store(), caller(), council_id, tool_id)
    return {"items": HistoryRecordSchema(many=True).dump(records)}, 200, JSON


def enabled_tools(council_id: str, audience: str | None = None):
    items = domain.enabled_tools(_store(), caller(), council_id, audience)
    return {"items": EnabledToolSchema(many=True).dump(items)}, 200, JSON


def get_sign_in(council_id: str):
    return SignInSettingsSchema().dump(domain.get_sign_in(_store(), caller(), council_id)), 200, JSON


def put_sign_in(council_id: str, body: dict):
    return SignInSettingsSchema().dump(domain.put_sign_in(_store(), caller(), council_id, body)), 200, JSON
