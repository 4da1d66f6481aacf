"""A small real clamd stand-in for the tests: a TCP server speaking the INSTREAM protocol."""

from __future__ import annotations

import socket
import socketserver
import struct
import threading

EICAR_MARK = b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE"


class _Handler(socketserver.BaseRequestHandler):
    def _exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            part = self.request.recv(n - len(data))
            if not part:
                raise ConnectionError("client went away")
            data += part
        return data

    def handle(self) -> None:
        server: FakeClamd = self.server  # type: ignore[assignment]
        command = b""
        while not command.endswith(b"\0"):
            part = self.request.recv(1)
            if not part:
                return
            command += part
        if command != b"zINSTREAM\0":
            self.request.sendall(b"UNKNOWN COMMAND\0")
            return
        tail = b""  # the signature may straddle two chunks
        found = False
        total = 0
        while True:
            (length,) = struct.unpack("!I", self._exact(4))
            if length == 0:
                break
            chunk = self._exact(length)
            total += length
            found = found or EICAR_MARK in tail + chunk
            tail = chunk[-64:]
        server.scanned.append(total)
        self.request.sendall(b"stream: Eicar-Test-Signature FOUND\0" if found else b"stream: OK\0")


class FakeClamd(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scanned: list[int] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


def dead_address() -> str:
    """host:port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"
