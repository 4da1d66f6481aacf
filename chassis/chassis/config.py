"""Configuration, read from the environment in one place.

Every process builds one ``Settings`` in its composition root and passes it
down; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def parse_service_urls(raw: str) -> dict[str, str]:
    """``"catalogue=http://127.0.0.1:8101,cases=http://..."`` -> dict."""
    urls: dict[str, str] = {}
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, url = part.partition("=")
        if not url:
            raise ValueError(f"SERVICE_URLS entry {part!r} is not name=url")
        urls[name.strip()] = url.strip().rstrip("/")
    return urls


@dataclass(frozen=True)
class Settings:
    """Settings shared by every Family Story process.

    | variable | default | meaning |
    | --- | --- | --- |
    | SERVICE_NAME | (given by the service) | name used for discovery, token audience, event exchange |
    | FS_ENV | development | ``production`` disables the demo identity provider and turns on HSTS |
    | MONGO_URI | mongodb://127.0.0.1:27017/ | the service's own MongoDB (or a compatible server) |
    | MONGO_DB | family_story_<service> | the service's own database |
    | AMQP_URI | amqp://guest:guest@127.0.0.1:5672/ | RabbitMQ |
    | INTERNAL_JWKS | (none) | path or http(s) URL of the gateway's JWKS (public keys of internal tokens) |
    | INTERNAL_TOKEN_ISSUER | family-story-gateway | expected ``iss`` of internal tokens |
    | MAX_BODY_BYTES | 65536 | request bodies above this answer 413 |
    | VALIDATE_RESPONSES | false | validate every response against the contract (on in tests) |
    | SERVICE_URLS | (empty) | static discovery: ``name=url,name=url`` |
    | CONSUL_HTTP_ADDR | (none) | when set, discovery and registration use Consul's HTTP API |
    | ADVERTISE_URL | (none) | this web process's own base URL, registered in Consul |
    | LOG_LEVEL | INFO | log level |
    """

    service_name: str
    env: str = "development"
    mongo_uri: str = "mongodb://127.0.0.1:27017/"
    mongo_db: str = ""
    amqp_uri: str = "amqp://guest:guest@127.0.0.1:5672/"
    internal_jwks: str = ""
    internal_token_issuer: str = "family-story-gateway"
    max_body_bytes: int = 65536
    validate_responses: bool = False
    service_urls: dict[str, str] = field(default_factory=dict)
    consul_http_addr: str = ""
    advertise_url: str = ""
    log_level: str = "INFO"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def production(self) -> bool:
        return self.env == "production"

    def get(self, key: str, default: str = "") -> str:
        """A service-specific setting (an environment variable of the same name)."""
        return self.extra.get(key, default)

    @classmethod
    def from_env(
        cls, service_name: str, environ: Mapping[str, str] | None = None, **defaults: str
    ) -> Settings:
        env = dict(os.environ if environ is None else environ)
        name = env.get("SERVICE_NAME", service_name)

        def pick(key: str, fallback: str) -> str:
            return env.get(key) or defaults.get(key) or fallback

        return cls(
            service_name=name,
            env=pick("FS_ENV", "development"),
            mongo_uri=pick("MONGO_URI", "mongodb://127.0.0.1:27017/"),
            mongo_db=pick("MONGO_DB", f"family_story_{name}"),
            amqp_uri=pick("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"),
            internal_jwks=pick("INTERNAL_JWKS", ""),
            internal_token_issuer=pick("INTERNAL_TOKEN_ISSUER", "family-story-gateway"),
            max_body_bytes=int(pick("MAX_BODY_BYTES", "65536")),
            validate_responses=_bool(env.get("VALIDATE_RESPONSES"), False),
            service_urls=parse_service_urls(pick("SERVICE_URLS", "")),
            consul_http_addr=pick("CONSUL_HTTP_ADDR", ""),
            advertise_url=pick("ADVERTISE_URL", ""),
            log_level=pick("LOG_LEVEL", "INFO"),
            extra={**defaults, **env},
        )
