"""The gateway's composition root: ``create_app()`` returns the ASGI application.

Routing, in order: the proxy prefixes (raw ASGI, see ``proxy.py``); the web
front end (``/`` and ``/static/...``); everything else is the connexion
AsyncApp serving ``contracts/gateway.yaml``. Security headers go on every
answer. Clients bound to the event loop (aiohttp, the async MongoDB client)
are built in the ASGI lifespan, once per worker process.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
from pathlib import Path
from typing import Any

import aiohttp
import connexion
from connexion.middleware import MiddlewarePosition
from kombu import Connection, Producer

from chassis.config import Settings
from chassis.discovery import discovery_for

# imported here, in the importing (main) thread: nameko brings eventlet, whose import in a
# worker thread's event loop leaves that thread unjoinable
from chassis.events import BroadcastListener
from chassis.jsonguard import JsonGuardMiddleware
from chassis.outbox import event_exchange
from chassis.problems import install_error_handlers
from chassis.tokens import TokenMinter, generate_key, load_signing_keys

from . import csrf
from . import proxy as proxy_mod
from .access import INVALIDATING_EVENTS, Access, InternalTokens, identity_for
from .config import GatewayConfig
from .directory import (
    CasesClient,
    CatalogueClient,
    HttpCasesClient,
    HttpCatalogueClient,
)
from .identity import DemoIdentityProvider, IdentityProvider
from .sessions import MongoSessionStore, Sessions, SessionStore
from .signin_setup import PERSON_SIGNED_OUT, build_signin

log = logging.getLogger(__name__)

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"
STATIC_DIR = Path(__file__).resolve().parent / "static"
SCOPE_KEY = "family_story.gateway"
SESSION_REVOKED = ("gateway", "session_revoked")
_STATIC_TYPES = {".html": b"text/html; charset=utf-8", ".js": b"text/javascript; charset=utf-8",
                 ".css": b"text/css; charset=utf-8"}


def load_keys(config: GatewayConfig, production: bool):
    """The signing keys; outside production an empty key directory gets a fresh key (once, under a lock)."""
    directory = config.keys_dir
    if production:
        keys = load_signing_keys(directory) if directory.is_dir() else {}
        if not keys:
            raise RuntimeError(f"no Ed25519 signing key in GATEWAY_KEYS_DIR={directory}")
        return keys
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:  # gunicorn workers start together
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not any(directory.glob("*.pem")):
            kid = generate_key(directory)
            log.warning("generated internal-token signing key %s in %s", kid, directory)
        return load_signing_keys(directory)


class Gateway:
    """Everything one gateway process holds: sessions, caches, clients, keys."""

    def __init__(self, settings: Settings, config: GatewayConfig, minter: TokenMinter,
                 identity_provider: IdentityProvider | None, session_store: SessionStore | None = None,
                 catalogue: CatalogueClient | None = None, cases: CasesClient | None = None,
                 listen_to_events: bool | None = None, signin_store=None):
        self.settings = settings
        self.config = config
        self.minter = minter
        self.tokens = InternalTokens(minter)
        self.identity_provider = identity_provider
        self.discovery = discovery_for(settings)
        self._own_store = session_store is None
        self._session_store = session_store
        self.sessions: Sessions | None = None if session_store is None else self._sessions(session_store)
        self.access = Access(
            catalogue or HttpCatalogueClient(lambda: self.http, self.discovery.resolve, self.tokens.mint),
            cases or HttpCasesClient(lambda: self.http, self.discovery.resolve, self.tokens.mint),
            config.cache_ttl,
        )
        self.listen_to_events = config.listen_to_events if listen_to_events is None else listen_to_events
        self.identity_for = identity_for
        self.http: aiohttp.ClientSession | None = None
        self.mongo = None
        self.listener = None  # chassis.events.BroadcastListener, when listening
        self.signin_store = signin_store  # None: MongoDB (own session store) or memory (given one)
        self.signin = None  # signin.SignIn, built at start-up
        self.started = False
        self._start_lock: asyncio.Lock | None = None

    def _sessions(self, store: SessionStore) -> Sessions:
        return Sessions(store, self.config.session_ttl, self.config.session_cache_seconds,
                        on_revoke=self._broadcast_revocation, on_revoke_person=self._broadcast_person_revocation)

    # --- lifecycle ----------------------------------------------------------------
    async def startup(self) -> None:
        if self.started:
            return
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self.started:
                return
            self.http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=30,
                                               ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=None, connect=self.config.connect_timeout,
                                              sock_read=self.config.read_timeout),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            if self._own_store:
                from pymongo import AsyncMongoClient

                self.mongo = AsyncMongoClient(self.settings.mongo_uri, appname="gateway", tz_aware=True,
                                              serverSelectionTimeoutMS=5000, connectTimeoutMS=3000)
                self._session_store = MongoSessionStore(self.mongo[self.settings.mongo_db])
                self.sessions = self._sessions(self._session_store)
            self.signin = build_signin(self, self.mongo[self.settings.mongo_db] if self.mongo is not None else None,
                                       store=self.signin_store)
            try:
                await self._session_store.ensure_indexes()
                await self.signin.store.ensure_indexes()
            except Exception as exc:
                log.warning("could not ensure session indexes: %s", type(exc).__name__)
            if self.listen_to_events:
                self.listener = BroadcastListener(
                    self.settings.amqp_uri, [*INVALIDATING_EVENTS, SESSION_REVOKED, PERSON_SIGNED_OUT],
                    on_event=self.on_event, on_connect=self.flush_caches, name="gateway-cache",
                ).start()
            self.started = True

    async def shutdown(self) -> None:
        if self.listener is not None:
            await asyncio.to_thread(self.listener.stop)
            self.listener = None
        if self.http is not None:
            await self.http.close()
            self.http = None
        if self.mongo is not None:
            await self.mongo.close()
            self.mongo = None
        self.started = False

    # --- events and caches -------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        if (event.get("source"), event.get("type")) == SESSION_REVOKED:
            digest = (event.get("data") or {}).get("session")
            if digest and self.sessions is not None:
                self.sessions.forget(digest)
            return
        if (event.get("source"), event.get("type")) == PERSON_SIGNED_OUT:
            data = event.get("data") or {}
            if data.get("person_id") and self.sessions is not None:
                self.sessions.forget_person(data.get("council_id"), data["person_id"])
            return
        self.access.on_event(event)

    def flush_caches(self) -> None:
        self.access.flush()
        self.tokens.flush()
        if self.sessions is not None:
            self.sessions.flush()

    async def _broadcast_revocation(self, digest: str) -> None:
        """Tell the other gateway processes to drop a revoked session (best effort; their cache is short)."""
        await self._broadcast(SESSION_REVOKED, "", {"session": digest})

    async def _broadcast_person_revocation(self, council_id: str | None, person_id: str) -> None:
        """Tell the other gateway processes to drop every cached session of a person (disabled, reset)."""
        await self._broadcast(PERSON_SIGNED_OUT, council_id or "", {"council_id": council_id,
                                                                    "person_id": person_id})

    async def _broadcast(self, kind: tuple[str, str], council_id: str, data: dict) -> None:
        if not self.listen_to_events:
            return

        def publish() -> None:
            from chassis.outbox import make_envelope

            envelope = make_envelope(*kind, council_id=council_id, data=data)
            with Connection(self.settings.amqp_uri, connect_timeout=2) as conn:
                Producer(conn.default_channel).publish(
                    envelope, exchange=event_exchange("gateway"), routing_key=kind[1],
                    serializer="json", declare=[event_exchange("gateway")], retry=False)

        try:
            await asyncio.wait_for(asyncio.to_thread(publish), timeout=3)
        except Exception as exc:
            log.warning("could not broadcast a session revocation: %s", type(exc).__name__)


class GatewayApp:
    """The ASGI entry point: proxy prefixes first, then the front end, then connexion."""

    def __init__(self, gateway: Gateway, api):
        self.gateway = gateway
        self.api = api
        self.proxy = proxy_mod.Proxy(gateway)
        self.security = proxy_mod.security_headers(gateway.settings.production)
        self.static = {}
        for name in ("index.html", "app.js", "style.css"):
            path = STATIC_DIR / name
            if path.exists():
                self.static["/" if name == "index.html" else "/static/" + name] = (
                    path.read_bytes(), _STATIC_TYPES[path.suffix])

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind == "http":
            if not self.gateway.started:
                await self.gateway.startup()
            raw = scope.get("raw_path") or scope["path"].encode()
            raw = raw.partition(b"?")[0]
            route = proxy_mod.match(raw) if raw.startswith(b"/api/") else None
            scope, csrf_refused = csrf.authenticate_cookie(scope)
            if csrf_refused:
                return await self.proxy.problem(send, 403, csrf.REFUSED)
            if route is not None:
                return await self.proxy(scope, receive, send, route)
            page = self.static.get(scope["path"])
            if page is not None and scope["method"] in ("GET", "HEAD"):
                return await self._static(send, *page, head=scope["method"] == "HEAD")
            scope[SCOPE_KEY] = self.gateway
            return await self.api(scope, receive, self._secured(send))
        if kind == "lifespan":
            return await self._lifespan(receive, send)
        if kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    def _secured(self, send):
        security = self.security

        async def secured_send(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in security if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return secured_send

    async def _static(self, send, body: bytes, content_type: bytes, head: bool) -> None:
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-cache"), *self.security]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.gateway.startup()
                except Exception as exc:
                    log.exception("gateway start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": type(exc).__name__})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.gateway.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(settings: Settings | None = None, *, session_store: SessionStore | None = None,
               catalogue: CatalogueClient | None = None, cases: CasesClient | None = None,
               identity_provider: IdentityProvider | None = None,
               listen_to_events: bool | None = None, signin_store=None) -> GatewayApp:
    """The gateway's ASGI app. Keyword arguments replace parts (tests); by default all comes from settings."""
    settings = settings or Settings.from_env("gateway")
    logging.basicConfig(level=settings.log_level)
    config = GatewayConfig.from_settings(settings)
    minter = TokenMinter(load_keys(config, settings.production), issuer=settings.internal_token_issuer,
                         lifetime=config.internal_token_seconds)
    if settings.production and (identity_provider is None or isinstance(identity_provider, DemoIdentityProvider)):
        identity_provider = None  # the demo provider does not exist in production
    elif identity_provider is None:
        identity_provider = DemoIdentityProvider.from_file(config.demo_people_file)
    gateway = Gateway(settings, config, minter, identity_provider, session_store=session_store,
                      catalogue=catalogue, cases=cases, listen_to_events=listen_to_events,
                      signin_store=signin_store)
    api = connexion.AsyncApp(__name__, specification_dir=str(CONTRACTS_DIR))
    api.add_api("gateway.yaml", strict_validation=True, validate_responses=settings.validate_responses,
                swagger_ui_options=None)
    # the gateway's own operations: JSON too deep (400) or too large (413) is refused before parsing;
    # proxied bodies are refused the same way by the service they go to
    api.add_middleware(JsonGuardMiddleware, position=MiddlewarePosition.BEFORE_SECURITY,
                       max_bytes=settings.max_body_bytes)
    install_error_handlers(api)
    return GatewayApp(gateway, api)
