"""A clamd client speaking the INSTREAM protocol over TCP (``CLAMD_ADDRESS=host:port``).

The protocol (clamd(8)): send ``zINSTREAM\\0``, then the stream as chunks each
prefixed by its length as a 4-byte big-endian unsigned integer, then a
zero-length chunk; clamd answers one NUL-terminated line:
``stream: OK``, ``stream: <signature> FOUND`` or ``... ERROR`` (for instance
``INSTREAM size limit exceeded. ERROR`` when the stream is longer than clamd's
``StreamMaxLength``: set it at least to ``DOCUMENTS_MAX_BYTES``).

Anything but a clear OK or FOUND is a failure, and failures close the door:
the upload answers 503 and nothing is stored.
"""

from __future__ import annotations

import logging
import socket
import struct

from .domain import ScannerUnavailable

log = logging.getLogger(__name__)

MAX_CHUNK = 1 << 20  # clamd reads each chunk into memory: keep them small
MAX_REPLY = 4096
UNAVAILABLE = "Documents cannot be checked for malware right now, so nothing was stored; try again later."


def parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"CLAMD_ADDRESS {address!r} is not host:port")
    return host.strip("[]"), int(port)


def parse_reply(reply: bytes) -> str | None:
    """None for a clean stream, the signature for an infected one; raises ScannerUnavailable otherwise."""
    line = reply.rstrip(b"\0\r\n").decode("utf-8", "replace").strip()
    _, _, verdict = line.partition(": ")
    if line.endswith(" FOUND") and verdict:
        return verdict[: -len(" FOUND")].strip() or "unknown"
    if verdict == "OK":
        return None
    log.warning("clamd answered something else than OK or FOUND")
    raise ScannerUnavailable(UNAVAILABLE)


class ClamdSession:
    def __init__(self, sock: socket.socket):
        self.sock = sock

    def feed(self, chunk: bytes) -> None:
        try:
            for start in range(0, len(chunk), MAX_CHUNK):
                part = chunk[start:start + MAX_CHUNK]
                self.sock.sendall(struct.pack("!I", len(part)) + part)
        except OSError as exc:
            log.warning("clamd stopped listening mid-stream (%s)", type(exc).__name__)
            raise ScannerUnavailable(UNAVAILABLE) from exc

    def verdict(self) -> str | None:
        try:
            self.sock.sendall(struct.pack("!I", 0))
            reply = b""
            while not reply.endswith(b"\0") and len(reply) < MAX_REPLY:
                data = self.sock.recv(MAX_REPLY)
                if not data:
                    break
                reply += data
        except OSError as exc:
            log.warning("clamd gave no verdict (%s)", type(exc).__name__)
            raise ScannerUnavailable(UNAVAILABLE) from exc
        return parse_reply(reply)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class ClamdScanner:
    """Scans each upload as it streams in; one TCP connection per upload."""

    def __init__(self, address: str, timeout: float = 30.0):
        self.host, self.port = parse_address(address)
        self.timeout = timeout

    def start(self) -> ClamdSession:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            log.warning("clamd cannot be reached (%s)", type(exc).__name__)
            raise ScannerUnavailable(UNAVAILABLE) from exc
        try:
            sock.sendall(b"zINSTREAM\0")
        except OSError as exc:
            sock.close()
            raise ScannerUnavailable(UNAVAILABLE) from exc
        return ClamdSession(sock)
