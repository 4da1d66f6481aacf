"""Consuming events reliably with nameko.

nameko's defaults lose messages in two ways, and both are replaced here:

* an ``event_handler`` that raises acks and drops the message. A
  ``reliable_handler`` instead rejects it into a retry queue (a TTL queue that
  dead-letters back into the handler's queue) and, after ``max_attempts``,
  moves it to ``<queue>.dead``, a durable queue an operator can list and
  replay (``python -m chassis.deadletters``).
* a handler's queue is declared only when its consumer starts, so events sent
  before then are dropped. ``declare_topology`` declares every handler queue
  and binding of a worker class up front; deployment runs it (``python -m
  <service>.worker declare``) before any publisher starts, and the worker
  runs it again at start.

Consumers are idempotent with ``process_once``: the event id is recorded in the
same transaction as the effect, so an event takes effect at most once.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kombu import Connection, Exchange, Queue, binding
from nameko.events import EventHandler
from nameko.messaging import Consumer
from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from .mongo import in_transaction
from .outbox import event_exchange

log = logging.getLogger(__name__)

RETRY_EXCHANGE = Exchange("family-story.retry", type="direct", durable=True)
DEAD_SUFFIX = ".dead"
RETRY_SUFFIX = ".retry"


@dataclass(frozen=True)
class HandlerTopology:
    queue: Queue
    retry_queue: Queue
    dead_queue: Queue

    def declare(self, channel) -> None:
        self.queue.exchange(channel).declare()
        RETRY_EXCHANGE(channel).declare()
        for q in (self.queue, self.retry_queue, self.dead_queue):
            q(channel).declare()


def handler_topology(source: str, event_type: str, service: str, method: str, retry_delay_ms: int) -> HandlerTopology:
    name = f"evt-{source}-{event_type}--{service}.{method}"
    queue = Queue(
        name,
        exchange=event_exchange(source),
        routing_key=event_type,
        durable=True,
        auto_delete=False,
        queue_arguments={"x-dead-letter-exchange": RETRY_EXCHANGE.name, "x-dead-letter-routing-key": name},
    )
    retry_queue = Queue(
        name + RETRY_SUFFIX,
        exchange=RETRY_EXCHANGE,
        routing_key=name,
        durable=True,
        auto_delete=False,
        queue_arguments={
            "x-message-ttl": retry_delay_ms,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": name,
        },
    )
    dead_queue = Queue(name + DEAD_SUFFIX, durable=True, auto_delete=False)
    return HandlerTopology(queue, retry_queue, dead_queue)


def attempts_so_far(message) -> int:
    """How many times this message was rejected from its queue already (RabbitMQ's x-death)."""
    deaths = (message.headers or {}).get("x-death") or []
    return sum(int(d.get("count", 0)) for d in deaths if d.get("reason") == "rejected")


class ReliableEventHandler(EventHandler):
    """An event handler that retries, then dead-letters; never drops."""

    def __init__(self, source_service: str, event_type: str, max_attempts: int = 5, retry_delay_ms: int = 500,
                 **kwargs: Any):
        super().__init__(source_service, event_type, reliable_delivery=True, requeue_on_error=False, **kwargs)
        self.max_attempts = max_attempts
        self.retry_delay_ms = retry_delay_ms

    def topology(self, service_name: str, method_name: str) -> HandlerTopology:
        return handler_topology(self.source_service, self.event_type, service_name, method_name, self.retry_delay_ms)

    def setup(self) -> None:
        topo = self.topology(self.container.service_name, self.method_name)
        with Connection(self.container.config["AMQP_URI"]) as conn:
            topo.declare(conn.default_channel)
        self.queue = topo.queue
        self.dead_queue = topo.dead_queue
        Consumer.setup(self)

    def handle_message_processed(self, message, result=None, exc_info=None) -> None:
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return
        attempt = attempts_so_far(message) + 1
        if attempt < self.max_attempts:
            log.warning("handler %s failed (attempt %d of %d): %s; will retry",
                        self.method_name, attempt, self.max_attempts, exc_info[0].__name__)
            message.reject(requeue=False)
            return
        log.error("handler %s failed %d times: %s; moving the event to %s",
                  self.method_name, attempt, exc_info[0].__name__, self.dead_queue.name)
        with Connection(self.container.config["AMQP_URI"], transport_options={"confirm_publish": True}) as conn:
            producer = conn.Producer()
            producer.publish(
                message.body,
                exchange="",
                routing_key=self.dead_queue.name,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                delivery_mode=2,
                headers={**(message.headers or {}), "x-failed-attempts": attempt,
                         "x-last-error": exc_info[0].__name__},
                declare=[self.dead_queue],
            )
        self.queue_consumer.ack_message(message)


reliable_handler = ReliableEventHandler.decorator


def worker_topologies(worker_cls: type) -> list[HandlerTopology]:
    """Every reliable handler queue of a nameko service class."""
    out = []
    for name in dir(worker_cls):
        method = getattr(worker_cls, name)
        for entrypoint in getattr(method, "nameko_entrypoints", ()):
            if isinstance(entrypoint, ReliableEventHandler):
                out.append(entrypoint.topology(worker_cls.name, name))
    return out


def declare_topology(amqp_uri: str, worker_cls: type) -> list[str]:
    """Declare a worker's queues and bindings before it (or any publisher) starts."""
    topologies = worker_topologies(worker_cls)
    with Connection(amqp_uri, connect_timeout=5) as conn:
        channel = conn.default_channel
        for topo in topologies:
            topo.declare(channel)
    return [t.queue.name for t in topologies]


def process_once(client: MongoClient, db: Database, event: dict,
                 effect: Callable[[ClientSession], Any]) -> bool:
    """Apply ``effect`` for ``event`` at most once; False when it was already applied."""

    def run(session: ClientSession) -> None:
        db["processed_events"].insert_one(
            {"_id": event["id"], "type": event.get("type"), "source": event.get("source")}, session=session
        )
        effect(session)

    try:
        in_transaction(client, run)
    except DuplicateKeyError:
        return False
    return True


class BroadcastListener:
    """A background thread receiving events on an exclusive queue (cache invalidation).

    Every process that keeps a cache gets every matching event. After each
    (re)connection ``on_connect`` runs, so a cache can drop what it may have
    missed while the broker was away.
    """

    def __init__(self, amqp_uri: str, bindings: Iterable[tuple[str, str]],
                 on_event: Callable[[dict], None], on_connect: Callable[[], None] = lambda: None,
                 name: str = "broadcast"):
        self.amqp_uri = amqp_uri
        self.bindings = list(bindings)
        self.on_event = on_event
        self.on_connect = on_connect
        self.name = name
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{name}-listener", daemon=True)

    def start(self) -> BroadcastListener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _queues(self) -> list[Queue]:
        # one named queue carrying every binding: kombu keys consumers by queue name, so several
        # server-named ("") queues in one consumer would leave all but the last unconsumed
        bindings = [binding(event_exchange(source), routing_key=event_type) for source, event_type in self.bindings]
        name = f"{self.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        return [Queue(name, bindings=bindings, exclusive=True, auto_delete=True, durable=False)]

    def _handle(self, body, message) -> None:
        try:
            self.on_event(body)
        except Exception:
            log.exception("%s listener failed on an event", self.name)
        message.ack()

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                with Connection(self.amqp_uri, connect_timeout=5, heartbeat=10) as conn:
                    with conn.Consumer(self._queues(), callbacks=[self._handle], accept=["json"]):
                        self.on_connect()
                        self.connected.set()
                        backoff = 0.2
                        while not self._stop.is_set():
                            try:
                                conn.drain_events(timeout=0.5)
                            except TimeoutError:
                                conn.heartbeat_check()
            except Exception as exc:
                self.connected.clear()
                log.warning("%s listener lost the broker (%s); reconnecting", self.name, type(exc).__name__)
                self.on_connect()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
