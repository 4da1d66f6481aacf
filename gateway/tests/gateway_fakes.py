"""Fakes and factories for the gateway's tests (fakes subclass the same abstract bases)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from gateway.directory import CasesClient, CatalogueClient, EnabledTool, UpstreamError
from gateway.identity import Principal
from gateway.sessions import SessionRecord, SessionStore


def make_tool(**overrides) -> EnabledTool:
    fields = dict(tool_id="timeline", name="Your story", summary="What happened and what comes next",
                  version="1.0.0", audiences=frozenset({"families", "young_people", "staff"}),
                  scopes=("cases:read",), service="timeline", url=None)
    fields.update(overrides)
    if not isinstance(fields["audiences"], frozenset):
        fields["audiences"] = frozenset(fields["audiences"])
    return EnabledTool(**fields)


def make_person(**overrides) -> Principal:
    fields = dict(person_id="p-sam", council_id="kensington-chelsea", display_name="Sam Parent", kind="family",
                  roles=(), scopes=(), login="sam.parent.kc")
    fields.update(overrides)
    return Principal(**fields)


class FakeCatalogue(CatalogueClient):
    def __init__(self, tools: dict[str, list[EnabledTool]] | None = None):
        self.tools = tools or {}
        self.calls: list[str] = []
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def enabled_tools(self, council_id: str) -> dict[str, EnabledTool]:
        self.calls.append(council_id)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise UpstreamError("catalogue down")
        return {t.tool_id: t for t in self.tools.get(council_id, [])}


class FakeCases(CasesClient):
    def __init__(self, memberships: dict[tuple[str, str], dict[str, str]] | None = None):
        self.memberships_by_person = memberships or {}
        self.calls: list[tuple[str, str]] = []

    async def memberships(self, council_id: str, person_id: str) -> dict[str, str]:
        self.calls.append((council_id, person_id))
        return dict(self.memberships_by_person.get((council_id, person_id), {}))


class MemorySessionStore(SessionStore):
    def __init__(self):
        self.records: dict[str, SessionRecord] = {}

    async def save(self, digest: str, record: SessionRecord) -> None:
        self.records[digest] = record

    async def find(self, digest: str) -> SessionRecord | None:
        return self.records.get(digest)

    async def delete(self, digest: str) -> None:
        self.records.pop(digest, None)

    async def delete_for_person(self, council_id, person_id) -> int:
        gone = [d for d, r in self.records.items()
                if r.principal.person_id == person_id and r.principal.council_id == council_id]
        for d in gone:
            del self.records[d]
        return len(gone)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def expired(record: SessionRecord, at: datetime) -> bool:
    return record.expires_at <= at
