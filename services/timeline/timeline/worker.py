"""The timeline worker: other tools' events become timeline entries.

``build_worker(settings)`` makes the nameko service class with one reliable
handler per configured source (``TIMELINE_STORY_SOURCES``, a comma list of
``<source>.<event_type>``), so a new publisher needs configuration only.
Run: ``python -m chassis.runworker timeline.worker:build_worker``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from chassis.config import Settings
from chassis.events import reliable_handler
from chassis.mongo import connect
from chassis.nameko_deps import Resource

from .domain import entry_from_story, utcnow
from .schemas import load_envelope
from .store import MongoEntryStore

log = logging.getLogger(__name__)

DEFAULT_STORY_SOURCES = "cases.member_added,cases.member_removed"
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def story_sources(raw: str) -> list[tuple[str, str]]:
    """``"cases.member_added,vendor-demo.visit_logged"`` -> [(source, event_type), ...]."""
    out: list[tuple[str, str]] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        source, _, event_type = item.rpartition(".")
        if not _SOURCE.match(source) or not _EVENT_TYPE.match(event_type):
            raise ValueError(f"TIMELINE_STORY_SOURCES entry {item!r} is not <source>.<event_type>")
        if (source, event_type) not in out:
            out.append((source, event_type))
    return out


def handler_name(source: str, event_type: str) -> str:
    return "handle_" + re.sub(r"[^a-z0-9_]", "_", f"{source}_{event_type}")


class StoryProjector:
    """Makes the entry an event's story asks for, exactly once; events without a story are ignored."""

    def __init__(self, settings: Settings):
        client = connect(settings.mongo_uri, f"{settings.service_name}-worker")
        self.store = MongoEntryStore(client, client[settings.mongo_db])
        self.store.ensure_indexes()

    def project(self, envelope: dict[str, Any]) -> bool:
        """True when an entry was made; raises ``ValidationError`` on a broken story (retried, then dead)."""
        event = load_envelope(envelope)
        if event["story"] is None:
            return False
        made = self.store.add_entry_from_event(envelope, entry_from_story(event, event["story"], utcnow()))
        if not made:
            log.info("event %s already on the timeline", event["id"])
        return made


def build_worker(settings: Settings) -> type:
    """The nameko service class ``timeline`` with a handler for each configured story source."""
    sources = story_sources(settings.get("TIMELINE_STORY_SOURCES", DEFAULT_STORY_SOURCES))
    max_attempts = int(settings.get("TIMELINE_MAX_ATTEMPTS", "5"))
    retry_delay_ms = int(settings.get("TIMELINE_RETRY_DELAY_MS", "500"))
    attrs: dict[str, Any] = {"name": "timeline", "projector": Resource(StoryProjector),
                             "__doc__": "Projects other tools' event stories onto the timeline."}
    for source, event_type in sources:
        name = handler_name(source, event_type)
        if name in attrs:
            raise ValueError(f"TIMELINE_STORY_SOURCES has two sources that make the handler {name}")

        def handle(self, event: dict[str, Any]) -> None:
            self.projector.project(event)

        handle.__name__ = handle.__qualname__ = name
        attrs[name] = reliable_handler(source, event_type, max_attempts=max_attempts,
                                       retry_delay_ms=retry_delay_ms)(handle)
    return type("TimelineWorker", (), attrs)
