"""The gateway's decisions: which tools a caller sees, what the internal token says.

Plain rules over two cached look-ups (the council's enabled tools, the
person's case memberships). Caches expire after ``CACHE_TTL_SECONDS`` and are
invalidated sooner by catalogue and cases events (``on_event``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from chassis.identity import Identity
from chassis.problems import NotFound

from .cache import AsyncTTLCache
from .directory import CasesClient, CatalogueClient, EnabledTool
from .identity import Principal

log = logging.getLogger(__name__)

TOOL_NOT_FOUND = "There is no such tool here."

# (source, event type) the gateway listens to, to drop what they outdate
INVALIDATING_EVENTS = (
    ("cases", "member_added"),
    ("cases", "member_removed"),
    ("catalogue", "tool_enabled"),
    ("catalogue", "tool_disabled"),
)


def tool_visible_to(tool: EnabledTool, principal: Principal) -> bool:
    """On for the caller's audience; a machine of the council sees every enabled tool (scopes are checked later)."""
    if principal.is_machine:
        return principal.council_id is not None
    audience = principal.audience
    return audience is not None and audience in tool.audiences


def identity_for(principal: Principal, cases: dict[str, str], client_ip: str | None) -> Identity:
    return Identity(
        subject=principal.person_id,
        actor=principal.actor,
        council_id=principal.council_id,
        audience=principal.audience,
        roles=frozenset(principal.roles),
        scopes=frozenset(principal.scopes),
        cases=dict(cases),
        client_ip=client_ip,
    )


class InternalTokens:
    """Mints internal tokens, reusing one for identical claims while at least half its life remains."""

    def __init__(self, minter, clock: Callable[[], float] = time.monotonic, max_entries: int = 20_000):
        self.minter = minter
        self.clock = clock
        self.reuse_for = minter.lifetime / 2
        self.max_entries = max_entries
        self._tokens: dict[tuple[str, str], tuple[float, str]] = {}

    def mint(self, audience: str, claims: dict[str, Any]) -> str:
        key = (audience, json.dumps(claims, sort_keys=True, separators=(",", ":")))
        now = self.clock()
        hit = self._tokens.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        token = self.minter.mint(audience, claims)
        if len(self._tokens) >= self.max_entries:
            self._tokens.clear()
        self._tokens[key] = (now + self.reuse_for, token)
        return token

    def flush(self) -> None:
        self._tokens.clear()


class Access:
    """Cached answers to "what is on for this caller" and "who is this caller on which case"."""

    def __init__(self, catalogue: CatalogueClient, cases: CasesClient, cache_ttl: float,
                 clock: Callable[[], float] = time.monotonic):
        self.catalogue = catalogue
        self.cases = cases
        self.tools_cache = AsyncTTLCache(cache_ttl, clock=clock)
        self.members_cache = AsyncTTLCache(cache_ttl, clock=clock)

    async def enabled_tools(self, council_id: str) -> dict[str, EnabledTool]:
        return await self.tools_cache.get(council_id, lambda: self.catalogue.enabled_tools(council_id))

    async def memberships(self, principal: Principal) -> dict[str, str]:
        """The caller's case roles; machines and people without a council have none."""
        council = principal.council_id
        if council is None or principal.is_machine:
            return {}
        person = principal.person_id
        return await self.members_cache.get((council, person), lambda: self.cases.memberships(council, person))

    async def tools_for(self, principal: Principal) -> list[EnabledTool]:
        """The app store home screen: tools on for the caller's council and audience."""
        if principal.council_id is None:
            return []
        tools = await self.enabled_tools(principal.council_id)
        return sorted((t for t in tools.values() if tool_visible_to(t, principal)), key=lambda t: t.name.lower())

    async def tool(self, principal: Principal, tool_id: str) -> EnabledTool:
        """The tool if the caller may reach it; NotFound otherwise, exactly as for an unknown tool."""
        if principal.council_id is None:
            raise NotFound(TOOL_NOT_FOUND)
        tool = (await self.enabled_tools(principal.council_id)).get(tool_id)
        if tool is None or not tool_visible_to(tool, principal):
            raise NotFound(TOOL_NOT_FOUND)
        return tool

    # --- invalidation (called from the event listener's thread) ----------------
    def on_event(self, event: dict[str, Any]) -> None:
        source, kind = event.get("source"), event.get("type")
        council = event.get("council_id")
        data = event.get("data") or {}
        if source == "cases" and kind in ("member_added", "member_removed"):
            person = data.get("person_id")
            if council:
                self.members_cache.invalidate((council, person))
            self.members_cache.invalidate_where(lambda key: key[1] == person)
        elif source == "catalogue" and kind in ("tool_enabled", "tool_disabled"):
            if council:
                self.tools_cache.invalidate(council)
            else:
                self.tools_cache.clear()
        else:
            return
        log.debug("cache invalidated by %s.%s", source, kind)

    def flush(self) -> None:
        self.tools_cache.clear()
        self.members_cache.clear()
