"""Starting and waiting for real servers on this machine, for ``make run`` and the tests.

Readiness is always an explicit probe with a deadline (a TCP connect, a
health endpoint, a broker handshake), never a fixed sleep.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlparse


class NotReady(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(probe: Callable[[], bool], timeout: float, what: str, interval: float = 0.05,
               alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        if not alive():
            raise NotReady(f"{what}: the process exited before it was ready")
        time.sleep(interval)  # the pause between probes of a deadline-bound readiness check
    raise NotReady(f"{what} was not ready within {timeout:.0f}s")


def tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class Proc:
    """A child process with its output in a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path | None = None
    popen: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def terminate(self) -> None:
        """Ask the process group to stop, without waiting (``stop`` waits)."""
        if self.alive():
            assert self.popen is not None
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 10.0) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_mongo_compatible(port: int, storage: str, log_path: Path) -> Proc:
    """SecantusDB, a MongoDB-wire server, as its own process (``:memory:`` for tests)."""
    proc = Proc("secantus", [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
                             "--storage-path", storage, "--log-level", "WARNING"],
                dict(os.environ), log_path).start()
    wait_until(lambda: tcp_open("127.0.0.1", port), 60, "SecantusDB", alive=proc.alive)
    return proc


def amqp_reachable(uri: str) -> bool:
    from kombu import Connection

    try:
        with Connection(uri, connect_timeout=2) as conn:
            conn.connect()
        return True
    except Exception:
        return False


def ensure_rabbitmq(uri: str, timeout: float = 60) -> None:
    """Use RabbitMQ at ``uri``; start a local ``rabbitmq-server`` if installed and not running."""
    if amqp_reachable(uri):
        return
    parsed = urlparse(uri)
    local = parsed.hostname in ("127.0.0.1", "localhost", "::1")
    if not (local and shutil.which("rabbitmq-server")):
        raise NotReady(
            f"RabbitMQ is not reachable at {parsed.hostname}:{parsed.port or 5672}; install it "
            "(apt-get install rabbitmq-server) or set AMQP_URI to a running broker."
        )
    subprocess.run(["rabbitmq-server", "-detached"], check=False, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wait_until(lambda: amqp_reachable(uri), timeout, "RabbitMQ", interval=0.5)


def create_vhost(base_uri: str, vhost: str) -> str:
    """A fresh RabbitMQ virtual host (via rabbitmqctl); returns its AMQP URI."""
    user = urlparse(base_uri).username or "guest"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
                   check=True, capture_output=True)
    parsed = urlparse(base_uri)
    return parsed._replace(path="/" + quote(vhost, safe="")).geturl()


def delete_vhost(vhost: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False, capture_output=True)


class CuttableTcpProxy:
    """A loopback TCP proxy whose link can be cut and restored: to show a process
    riding out a broker (or any server) outage without stopping the real server,
    which other tests of the same run may be using."""

    def __init__(self, target_host: str, target_port: int):
        import threading

        self.target = (target_host, target_port)
        self.port = free_port()
        self._up = threading.Event()
        self._up.set()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._server.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept, daemon=True, name="cuttable-proxy")

    def start(self) -> CuttableTcpProxy:
        self._thread.start()
        return self

    def cut(self) -> None:
        """Drop every open link and refuse new ones until ``restore``."""
        self._up.clear()
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                conn.close()
            self._conns.clear()

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._stop.set()
        self.cut()
        self._server.close()
        self._thread.join(5)

    def _accept(self) -> None:
        import threading

        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            if not self._up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass
