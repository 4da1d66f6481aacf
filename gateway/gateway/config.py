"""The gateway's own settings, read in one place from ``chassis.config.Settings``.

| variable | default | meaning |
| --- | --- | --- |
| GATEWAY_KEYS_DIR | var/gateway-keys | Ed25519 private keys (``<kid>.pem``) that sign internal tokens; the newest kid signs. Empty outside production: one is generated |
| DEMO_PEOPLE_FILE | (none) | JSON file of the demo identity provider (``{"people": [...]}``); ignored in production |
| SESSION_TTL_SECONDS | 43200 | lifetime of a session token |
| SESSION_CACHE_SECONDS | 5 | how long a worker process trusts a session it looked up, on the proxy path only (revocation is broadcast; 0 = always ask MongoDB) |
| CACHE_TTL_SECONDS | 30 | fallback expiry of the memberships and enabled-tools caches (events invalidate them sooner) |
| INTERNAL_TOKEN_SECONDS | 30 | lifetime of a minted internal token (at most 60) |
| UPSTREAM_CONNECT_TIMEOUT | 5 | seconds to connect to an upstream |
| UPSTREAM_READ_TIMEOUT | 60 | seconds an upstream may stay silent while answering |
| GATEWAY_EVENTS | on | listen to catalogue/cases events for cache invalidation (``off`` relies on CACHE_TTL_SECONDS alone) |
| GATEWAY_PUBLIC_URL | (from the request outside production) | the gateway's public base URL (the OIDC redirect URI is ``{it}/api/oidc/callback``); required in production |
| NOTIFIER | file (outside production), govuk (production) | how one-time codes travel |
| NOTIFY_FILE | var/notifications.jsonl | the file notifier's file (one JSON line per message) |
| NOTIFY_API_KEY / NOTIFY_TEMPLATES / NOTIFY_BASE_URL | | GOV.UK Notify: API key, ``invitation=<uuid>,password_reset=<uuid>``, API base URL |
| SIGNIN_MAX_FAILURES | 5 | failures per login before a lockout |
| SIGNIN_IP_MAX_FAILURES | 100 (production), 10000 (elsewhere: test suites share one loopback address) | failures per client IP before a lockout |
| SIGNIN_LOCK_SECONDS / SIGNIN_MAX_LOCK_SECONDS | 30 / 3600 | first lockout, doubling with each further failure up to the maximum |
| SIGNIN_QUIET_SECONDS | 900 | failures are forgotten after this long without one |
| MACHINE_TOKEN_SECONDS | 3600 | lifetime of a client-credentials access token |

plus the shared ones (``MONGO_URI``/``MONGO_DB`` for sessions, ``AMQP_URI``,
``SERVICE_URLS``/``CONSUL_HTTP_ADDR`` for discovery, ``FS_ENV``,
``INTERNAL_TOKEN_ISSUER``, ``VALIDATE_RESPONSES``, ``LOG_LEVEL``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chassis.config import Settings


def _on(value: str, default: bool) -> bool:
    if not value:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class GatewayConfig:
    keys_dir: Path
    demo_people_file: str
    session_ttl: int
    session_cache_seconds: float
    cache_ttl: float
    internal_token_seconds: int
    connect_timeout: float
    read_timeout: float
    listen_to_events: bool
    public_url: str = ""
    notifier: str = "file"
    notify_file: str = "var/notifications.jsonl"
    notify_api_key: str = ""
    notify_templates: str = ""
    notify_base_url: str = "https://api.notifications.service.gov.uk"
    max_failures: int = 5
    ip_max_failures: int = 100
    lock_seconds: float = 30.0
    max_lock_seconds: float = 3600.0
    quiet_seconds: float = 900.0
    machine_token_seconds: int = 3600

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayConfig:
        get = settings.get
        return cls(
            keys_dir=Path(get("GATEWAY_KEYS_DIR") or "var/gateway-keys"),
            demo_people_file=get("DEMO_PEOPLE_FILE"),
            session_ttl=int(get("SESSION_TTL_SECONDS") or 43200),
            session_cache_seconds=float(get("SESSION_CACHE_SECONDS") or 5),
            cache_ttl=float(get("CACHE_TTL_SECONDS") or 30),
            internal_token_seconds=int(get("INTERNAL_TOKEN_SECONDS") or 30),
            connect_timeout=float(get("UPSTREAM_CONNECT_TIMEOUT") or 5),
            read_timeout=float(get("UPSTREAM_READ_TIMEOUT") or 60),
            listen_to_events=_on(get("GATEWAY_EVENTS"), True),
            public_url=(get("GATEWAY_PUBLIC_URL") or "").rstrip("/"),
            notifier=get("NOTIFIER") or ("govuk" if settings.production else "file"),
            notify_file=get("NOTIFY_FILE") or "var/notifications.jsonl",
            notify_api_key=get("NOTIFY_API_KEY") or "",
            notify_templates=get("NOTIFY_TEMPLATES") or "",
            notify_base_url=get("NOTIFY_BASE_URL") or "https://api.notifications.service.gov.uk",
            max_failures=int(get("SIGNIN_MAX_FAILURES") or 5),
            ip_max_failures=int(get("SIGNIN_IP_MAX_FAILURES") or (100 if settings.production else 10000)),
            lock_seconds=float(get("SIGNIN_LOCK_SECONDS") or 30),
            max_lock_seconds=float(get("SIGNIN_MAX_LOCK_SECONDS") or 3600),
            quiet_seconds=float(get("SIGNIN_QUIET_SECONDS") or 900),
            machine_token_seconds=int(get("MACHINE_TOKEN_SECONDS") or 3600),
        )
