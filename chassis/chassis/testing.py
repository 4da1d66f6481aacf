"""pytest plugin shared by every test folder (``pytest_plugins = ["chassis.testing"]``).

Session fixtures start real servers for the run and stop them after: a fresh
in-memory SecantusDB (MongoDB wire protocol) and a fresh RabbitMQ virtual
host. Nothing here touches the data of ``make run``.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from .devservers import create_vhost, delete_vhost, ensure_rabbitmq, free_port, start_mongo_compatible
from .tokens import TokenMinter, generate_key, jwks_of, load_signing_keys

BASE_AMQP_URI = os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("family-story-run")


@pytest.fixture(scope="session")
def mongo_uri(run_dir):
    """A fresh SecantusDB server for this test run (``:memory:``)."""
    port = free_port()
    proc = start_mongo_compatible(port, ":memory:", run_dir / "logs" / "secantus.log")
    yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
    proc.stop()


@pytest.fixture(scope="session")
def amqp_uri():
    """A RabbitMQ virtual host of this run's own, deleted after it."""
    ensure_rabbitmq(BASE_AMQP_URI)
    vhost = f"fs-test-{uuid.uuid4().hex[:10]}"
    uri = create_vhost(BASE_AMQP_URI, vhost)
    yield uri
    delete_vhost(vhost)


@pytest.fixture(scope="session")
def signing_keys(run_dir):
    keys_dir = run_dir / "keys"
    generate_key(keys_dir, "test-key-1")
    return load_signing_keys(keys_dir)


@pytest.fixture(scope="session")
def jwks_path(run_dir, signing_keys) -> str:
    path = run_dir / "jwks.json"
    path.write_text(json.dumps(jwks_of(signing_keys)))
    return str(path)


@pytest.fixture(scope="session")
def minter(signing_keys) -> TokenMinter:
    return TokenMinter(signing_keys, issuer="family-story-gateway")


def unique_db(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


_FIGURES: list[str] = []


def report(line: str) -> None:
    """A figure measured by a test, shown at the end of the run (test output is otherwise captured)."""
    _FIGURES.append(line.strip())


def pytest_terminal_summary(terminalreporter) -> None:
    if _FIGURES:
        terminalreporter.section("figures measured in this run")
        for line in _FIGURES:
            terminalreporter.write_line(line)


class ServiceCaller:
    """Calls an in-process service app (``app.test_client()``) as ``who``, with a freshly minted
    internal token for that service on every request."""

    service = ""

    def __init__(self, http, minter: TokenMinter, who):
        self.http, self.minter, self.who = http, minter, who

    def __call__(self, method: str, path: str, **kwargs):
        headers = {"Authorization": "Bearer " + self.minter.mint(self.service, self.who.to_claims()),
                   **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)


def caller_for(service: str) -> type[ServiceCaller]:
    """A ``ServiceCaller`` class bound to one service (its tests subclass it to add helpers)."""
    return type(f"{service.capitalize()}Caller", (ServiceCaller,), {"service": service})
