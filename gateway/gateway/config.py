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
        )
