"""What the gateway asks the platform services: enabled tools (catalogue) and case memberships (cases).

Each is an abstract client with an HTTP implementation; tests use fakes that
subclass the same bases. The HTTP clients call as the gateway actor with an
internal token minted for the service they call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from chassis.identity import Identity


class UpstreamError(Exception):
    """A platform service did not give a usable answer."""


@dataclass(frozen=True)
class EnabledTool:
    tool_id: str
    name: str
    summary: str
    version: str
    audiences: frozenset[str]
    scopes: tuple[str, ...] = ()
    service: str | None = None  # runs_at.service: resolved by discovery
    url: str | None = None  # runs_at.url: a vendor-hosted tool

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> EnabledTool:
        runs_at = doc.get("runs_at") or {}
        return cls(
            tool_id=str(doc["tool_id"]),
            name=str(doc.get("name") or doc["tool_id"]),
            summary=str(doc.get("summary") or ""),
            version=str(doc.get("version") or ""),
            audiences=frozenset(doc.get("audiences") or ()),
            scopes=tuple(doc.get("scopes") or ()),
            service=runs_at.get("service"),
            url=(runs_at.get("url") or "").rstrip("/") or None,
        )

    def listing(self) -> dict[str, str]:
        return {"tool_id": self.tool_id, "name": self.name, "summary": self.summary, "version": self.version}


class CatalogueClient(ABC):
    @abstractmethod
    async def enabled_tools(self, council_id: str) -> dict[str, EnabledTool]:
        """The tools on in a council (any audience), by tool id."""

    async def sign_in_settings(self, council_id: str) -> dict[str, Any]:
        """How the council's people sign in: ``{"oidc": {...} | None, "staff_totp_required": bool}``."""
        return {"oidc": None, "staff_totp_required": False}


class CasesClient(ABC):
    @abstractmethod
    async def memberships(self, council_id: str, person_id: str) -> dict[str, str]:
        """A person's case roles in their council: {case_id: role}."""


def gateway_claims(council_id: str | None) -> dict[str, Any]:
    return Identity(subject="gateway", actor="gateway", council_id=council_id).to_claims()


class _HttpClient:
    service = ""

    def __init__(self, http: Callable[[], aiohttp.ClientSession], resolve: Callable[[str], str],
                 mint: Callable[[str, dict], str]):
        self._http = http
        self._resolve = resolve
        self._mint = mint

    async def _get_json(self, council_id: str, path: str) -> dict[str, Any]:
        try:
            base = self._resolve(self.service)
        except LookupError as exc:
            raise UpstreamError(f"{self.service} is not known to discovery") from exc
        headers = {"Authorization": "Bearer " + self._mint(self.service, gateway_claims(council_id)),
                   "Accept": "application/json"}
        try:
            async with self._http().get(base + path, headers=headers) as resp:
                if resp.status == 404:
                    return {"items": []}
                if resp.status != 200:
                    raise UpstreamError(f"{self.service} answered {resp.status} on {path}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamError(f"{self.service} unreachable: {type(exc).__name__}") from exc


class HttpCatalogueClient(_HttpClient, CatalogueClient):
    service = "catalogue"

    async def enabled_tools(self, council_id: str) -> dict[str, EnabledTool]:
        doc = await self._get_json(council_id, f"/councils/{quote(council_id, safe='')}/enabled-tools")
        tools = (EnabledTool.from_doc(item) for item in doc.get("items", []))
        return {tool.tool_id: tool for tool in tools}

    async def sign_in_settings(self, council_id: str) -> dict[str, Any]:
        doc = await self._get_json(council_id, f"/councils/{quote(council_id, safe='')}/sign-in")
        return {"oidc": doc.get("oidc"), "staff_totp_required": bool(doc.get("staff_totp_required"))}


class HttpCasesClient(_HttpClient, CasesClient):
    service = "cases"

    async def memberships(self, council_id: str, person_id: str) -> dict[str, str]:
        doc = await self._get_json(council_id, f"/people/{quote(person_id, safe='')}/memberships")
        return {str(m["case_id"]): str(m["role"]) for m in doc.get("items", [])}
