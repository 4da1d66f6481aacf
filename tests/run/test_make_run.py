"""``make run``'s own entry point: it starts the platform on its own data folder, seeds
the demo, and a demo parent reads the demo timeline through the gateway with curl;
a second start reuses the data. Ctrl-C (SIGINT) stops every process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from chassis.devservers import create_vhost, delete_vhost, ensure_rabbitmq, free_port, wait_until
from chassis.testing import BASE_AMQP_URI

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def start(var: Path, port: int, amqp_uri: str, log: Path, **env) -> subprocess.Popen:
    environ = {**os.environ, "FS_VAR_DIR": str(var), "GATEWAY_PORT": str(port), "FS_SERVICE_PORT_BASE": "0",
               "AMQP_URI": amqp_uri, "WEB_CONCURRENCY": "1", **env}
    environ.pop("MONGO_URI", None)
    return subprocess.Popen([sys.executable, str(ROOT / "deploy" / "local" / "run.py")], env=environ,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    return proc.wait(60)


def curl(*args: str) -> str:
    return subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture
def own_amqp_uri():
    """A virtual host of its own: sharing one with the e2e platform would make the two platforms'
    workers compete for the same queues."""
    ensure_rabbitmq(BASE_AMQP_URI)
    vhost = f"fs-makerun-{uuid.uuid4().hex[:8]}"
    yield create_vhost(BASE_AMQP_URI, vhost)
    delete_vhost(vhost)


def test_make_run_serves_the_demo_and_a_parent_reads_the_timeline_with_curl(tmp_path, own_amqp_uri):
    var, port = tmp_path / "var", free_port()
    log = tmp_path / "run.log"
    proc = start(var, port, own_amqp_uri, log)
    try:
        wait_until(lambda: "Ctrl-C stops everything" in log.read_text() or proc.poll() is not None, 240,
                   "make run ready")
        out = log.read_text()
        assert proc.poll() is None, out[-3000:]
        assert f"http://127.0.0.1:{port}/" in out and "sam.okafor" in out and "seeded demo data" in out
        base = f"http://127.0.0.1:{port}"
        token = json.loads(curl("-X", "POST", f"{base}/api/session", "-H", "Content-Type: application/json",
                                "-d", '{"login":"sam.okafor"}'))["token"]
        entries = json.loads(curl(f"{base}/api/tools/timeline/cases/kc-okafor/entries?limit=100",
                                  "-H", f"Authorization: Bearer {token}"))["items"]
        titles = {e["title"] for e in entries}
        assert "Interim care order: Maya to stay with her aunt Grace" in titles
        assert "Supervision notes" not in titles  # staff only
        jordan = json.loads(curl("-X", "POST", f"{base}/api/session", "-H", "Content-Type: application/json",
                                 "-d", '{"login":"jordan.okafor"}'))["token"]
        theirs = json.loads(curl(f"{base}/api/tools/timeline/cases/kc-okafor/entries?limit=100",
                                 "-H", f"Authorization: Bearer {jordan}"))["items"]
        assert "Maya's new school and address" in titles
        assert "Maya's new school and address" not in {e["title"] for e in theirs}  # excluded
    finally:
        assert stop(proc) == 0
    assert not re.search(r"stopped unexpectedly", log.read_text())

    # a second run reuses the data kept under var/
    log2 = tmp_path / "run2.log"
    proc = start(var, port, own_amqp_uri, log2, FS_TOOLS="timeline")
    try:
        wait_until(lambda: "Ctrl-C stops everything" in log2.read_text() or proc.poll() is not None, 240,
                   "second make run ready")
        assert "reusing demo data" in log2.read_text(), log2.read_text()[-3000:]
    finally:
        assert stop(proc) == 0
