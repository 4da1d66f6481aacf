"""Finding services: Consul's HTTP API when CONSUL_HTTP_ADDR is set, static configuration otherwise."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from urllib.parse import urlparse

from .config import Settings

log = logging.getLogger(__name__)


class ServiceNotFound(LookupError):
    pass


class StaticDiscovery:
    """Addresses from ``SERVICE_URLS`` (``name=url,...``)."""

    def __init__(self, urls: dict[str, str]):
        self.urls = dict(urls)

    def resolve(self, name: str) -> str:
        try:
            return self.urls[name]
        except KeyError:
            raise ServiceNotFound(name) from None


def _consul_client(addr: str):
    import consul  # py-consul

    parsed = urlparse(addr if "://" in addr else f"http://{addr}")
    return consul.Consul(host=parsed.hostname or "127.0.0.1", port=parsed.port or 8500,
                         scheme=parsed.scheme or "http")


class ConsulDiscovery:
    """Healthy instances from Consul's catalogue, cached briefly, round-robin."""

    def __init__(self, addr: str, ttl: float = 5.0, client=None):
        self.client = client or _consul_client(addr)
        self.ttl = ttl
        self._cache: dict[str, tuple[float, itertools.cycle]] = {}
        self._lock = threading.Lock()

    def resolve(self, name: str) -> str:
        with self._lock:
            cached = self._cache.get(name)
            if cached and time.monotonic() - cached[0] < self.ttl:
                return next(cached[1])
        _, entries = self.client.health.service(name, passing=True)
        urls = []
        for entry in entries:
            svc = entry["Service"]
            host = svc.get("Address") or entry["Node"].get("Address")
            urls.append(f"http://{host}:{svc['Port']}")
        if not urls:
            raise ServiceNotFound(name)
        cycle = itertools.cycle(urls)
        with self._lock:
            self._cache[name] = (time.monotonic(), cycle)
        return next(cycle)


def discovery_for(settings: Settings):
    if settings.consul_http_addr:
        return ConsulDiscovery(settings.consul_http_addr)
    return StaticDiscovery(settings.service_urls)


def service_id(settings: Settings) -> str:
    parsed = urlparse(settings.advertise_url)
    return f"{settings.service_name}-{parsed.hostname}-{parsed.port}"


def register(settings: Settings, client=None) -> str | None:
    """Register this web process in Consul with an HTTP health check; None without Consul."""
    if not settings.consul_http_addr or not settings.advertise_url:
        return None
    import consul

    client = client or _consul_client(settings.consul_http_addr)
    parsed = urlparse(settings.advertise_url)
    sid = service_id(settings)
    client.agent.service.register(
        settings.service_name,
        service_id=sid,
        address=parsed.hostname,
        port=parsed.port,
        tags=["family-story"],
        check=consul.Check.http(settings.advertise_url.rstrip("/") + "/health", interval="5s", timeout="2s",
                                 deregister="1m"),
    )
    log.info("registered %s in consul", sid)
    return sid


def deregister(settings: Settings, client=None) -> None:
    if not settings.consul_http_addr or not settings.advertise_url:
        return
    client = client or _consul_client(settings.consul_http_addr)
    client.agent.service.deregister(service_id(settings))
    log.info("deregistered %s from consul", service_id(settings))
