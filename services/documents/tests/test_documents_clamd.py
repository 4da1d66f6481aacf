"""The clamd client against a real TCP server speaking INSTREAM, and against nothing at all."""

from __future__ import annotations

import socket
import threading

import documents_samples as s
import pytest
from documents_clamd import FakeClamd, dead_address

from documents.domain import ScannerUnavailable
from documents.scanner import ClamdScanner, parse_address, parse_reply


@pytest.fixture
def clamd():
    with FakeClamd() as server:
        yield server


def scan(address: str, *chunks: bytes):
    session = ClamdScanner(address, timeout=5).start()
    try:
        for chunk in chunks:
            session.feed(chunk)
        return session.verdict()
    finally:
        session.close()


def test_clean_stream_is_ok(clamd):
    assert scan(clamd.address, s.PDF, b"x" * 3_000_000) is None
    assert clamd.scanned == [len(s.PDF) + 3_000_000]


def test_eicar_is_found_even_across_chunks(clamd):
    assert scan(clamd.address, b"hello " + s.EICAR[:20], s.EICAR[20:]) == "Eicar-Test-Signature"


def test_nothing_listening_fails_closed():
    with pytest.raises(ScannerUnavailable) as caught:
        ClamdScanner(dead_address(), timeout=2).start()
    assert caught.value.status == 503


def test_scanner_that_hangs_up_without_a_verdict_fails_closed():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def hang_up():
        conn, _ = listener.accept()
        conn.recv(100)
        conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    with pytest.raises(ScannerUnavailable):
        scan(f"127.0.0.1:{listener.getsockname()[1]}", b"x" * 10, b"y" * 10)
    listener.close()


@pytest.mark.parametrize("reply", [b"INSTREAM size limit exceeded. ERROR\0", b"", b"stream: \0", b"garbage"])
def test_anything_but_ok_or_found_is_unavailable(reply):
    with pytest.raises(ScannerUnavailable):
        parse_reply(reply)


def test_replies_and_addresses_parse():
    assert parse_reply(b"stream: OK\0") is None
    assert parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\0") == "Win.Test.EICAR_HDB-1"
    assert parse_address("clamd.internal:3310") == ("clamd.internal", 3310)
    with pytest.raises(ValueError):
        parse_address("clamd")
