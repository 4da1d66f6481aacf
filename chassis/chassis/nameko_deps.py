"""nameko dependency providers shared by every worker.

Nothing here opens a connection at import: clients are built in ``setup()``
and the relay loop starts in ``start()``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from nameko.extensions import DependencyProvider

from .config import Settings
from .mongo import connect
from .outbox import Outbox, OutboxRelay

log = logging.getLogger(__name__)

SETTINGS_KEY = "FAMILY_STORY_SETTINGS"


def settings_of(container) -> Settings:
    return container.config[SETTINGS_KEY]


class Resource(DependencyProvider):
    """Injects ``factory(settings)`` (a store, say), built once per worker process."""

    def __init__(self, factory: Callable[[Settings], Any]):
        self.factory = factory
        self.value: Any = None

    def setup(self) -> None:
        self.value = self.factory(settings_of(self.container))

    def get_dependency(self, worker_ctx) -> Any:
        return self.value


class OutboxRelayProvider(DependencyProvider):
    """Relays the service's outbox to RabbitMQ in a managed loop.

    Polls every ``interval`` seconds when idle; on a broker failure it backs off
    (up to 5 s) and reconnects, so events wait in the outbox while RabbitMQ is
    down and go out when it is back.
    """

    def __init__(self, interval: float = 0.05, batch: int = 200):
        self.interval = interval
        self.batch = batch
        self._stop = threading.Event()
        self.relay: OutboxRelay | None = None

    def setup(self) -> None:
        settings = settings_of(self.container)
        client = connect(settings.mongo_uri, f"{settings.service_name}-relay")
        outbox = Outbox(client[settings.mongo_db], settings.service_name)
        outbox.ensure_indexes()
        self.relay = OutboxRelay(outbox, settings.amqp_uri)

    def start(self) -> None:
        self.container.spawn_managed_thread(self._run, identifier="outbox-relay")

    def stop(self) -> None:
        self._stop.set()

    def kill(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        assert self.relay is not None
        backoff = 0.2
        while not self._stop.is_set():
            try:
                sent = self.relay.relay_batch(self.batch)
                backoff = 0.2
            except Exception as exc:
                log.warning("outbox relay: broker or store unavailable (%s); retrying in %.1fs",
                            type(exc).__name__, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if sent == 0:
                self._stop.wait(self.interval)
        self.relay.close()

    def get_dependency(self, worker_ctx) -> OutboxRelay | None:
        return self.relay
