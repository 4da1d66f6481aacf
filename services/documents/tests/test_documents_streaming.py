"""Uploads and downloads stream through a real web process (gunicorn + uvicorn worker, as deployed):
the worker's peak memory stays flat for a 40 MB round trip, and 100 MB bodies are refused with 413
whether declared or streamed, leaving nothing in GridFS."""

from __future__ import annotations

import hashlib
import os
import select
import socket
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from pymongo import MongoClient

from chassis.devservers import Proc, free_port, http_ok, wait_until
from chassis.identity import Identity
from chassis.testing import unique_db

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
CASE = "case-1"
MB = 1024 * 1024
RSS_BUDGET = 16 * MB


@pytest.fixture(scope="module")
def web(mongo_uri, jwks_path, minter, run_dir):
    port = free_port()
    db_name = unique_db("documents_stream")
    env = dict(os.environ, SERVICE_NAME="documents", MONGO_URI=mongo_uri, MONGO_DB=db_name,
               INTERNAL_JWKS=jwks_path, WEB_CONCURRENCY="1", BIND=f"127.0.0.1:{port}",
               VALIDATE_RESPONSES="0", PYTHONUNBUFFERED="1")
    env.pop("DOCUMENTS_MAX_BYTES", None)  # the default: 50 MB
    proc = Proc("documents-web", [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                                  "documents.app:create_app()"], env,
                run_dir / "logs" / f"documents-stream-{uuid.uuid4().hex[:6]}.log", cwd=ROOT).start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(url + "/health"), 60, "documents web", alive=proc.alive)
        client = MongoClient(mongo_uri, tz_aware=True)
        claims = Identity(subject="sw", actor="person", council_id="council-a", audience="staff",
                          cases={CASE: "social_worker"}).to_claims()

        def auth() -> dict[str, str]:  # internal tokens live 30 s: a fresh one per request
            return {"Authorization": "Bearer " + minter.mint("documents", claims)}

        yield url, port, proc, client[db_name], auth
        client.close()
    finally:
        proc.stop()


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_peak(pid: int) -> int:
    """Reset VmHWM to the current RSS (``clear_refs`` 5) when allowed; the baseline to measure from."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return status_kb(pid, "VmHWM")
    return status_kb(pid, "VmRSS")


def pdf_stream(total: int, digest):
    """``total`` bytes of a PDF-looking file, made a chunk at a time (the test holds none of it whole)."""
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KB of non-repeating-looking bytes
    head = b"%PDF-1.7\n"
    digest.update(head)
    yield head
    sent = len(head)
    while sent < total:
        chunk = block[: min(len(block), total - sent)]
        digest.update(chunk)
        sent += len(chunk)
        yield chunk


def stored(db) -> tuple[int, int, int]:
    return (db["documents"].count_documents({}), db["content.files"].count_documents({}),
            db["content.chunks"].count_documents({}))


def test_40mb_round_trip_is_byte_identical_and_the_worker_memory_stays_flat(web):
    url, _, proc, _db, auth = web
    with httpx.Client(base_url=url, timeout=120) as http:
        warm = http.post(f"/cases/{CASE}/documents", params={"filename": "warm.pdf"}, content=b"%PDF-1.4\nwarm",
                         headers={"Content-Type": "application/octet-stream", **auth()})
        assert warm.status_code == 201, warm.text
        http.get(f"/cases/{CASE}/documents/{warm.json()['document_id']}/content", headers=auth()).raise_for_status()
        pid = worker_pid(proc.popen.pid)
        baseline = reset_peak(pid)

        size = 40 * MB
        sent_digest = hashlib.sha256()
        resp = http.post(f"/cases/{CASE}/documents", params={"filename": "big scan.pdf"},
                         content=pdf_stream(size, sent_digest),
                         headers={"Content-Type": "application/octet-stream", "Content-Length": str(size), **auth()})
        assert resp.status_code == 201, resp.text
        doc = resp.json()
        assert doc["size"] == size and doc["sha256"] == sent_digest.hexdigest()
        upload_growth = status_kb(pid, "VmHWM") - baseline

        got_digest, got = hashlib.sha256(), 0
        with http.stream("GET", f"/cases/{CASE}/documents/{doc['document_id']}/content", headers=auth()) as download:
            assert download.status_code == 200
            assert download.headers["x-content-type-options"] == "nosniff"
            assert download.headers["content-disposition"].startswith("attachment;")
            for chunk in download.iter_raw():
                got_digest.update(chunk)
                got += len(chunk)
        assert got == size and got_digest.hexdigest() == sent_digest.hexdigest()
        growth = status_kb(pid, "VmHWM") - baseline
    print(f"peak RSS growth: upload {upload_growth / MB:.1f} MB, upload+download {growth / MB:.1f} MB")
    assert upload_growth < RSS_BUDGET, f"upload grew the worker's peak RSS by {upload_growth / MB:.1f} MB"
    assert growth < RSS_BUDGET, f"upload+download grew the worker's peak RSS by {growth / MB:.1f} MB"


def raw_request(port: int, head: bytes, body_chunks=(), timeout: float = 60) -> bytes:
    """Send a request over a plain socket, feeding body chunks until the server answers; its answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(head)
        answer = b""
        for chunk in body_chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(timeout)
        while b"\r\n\r\n" not in answer:
            part = sock.recv(65536)
            if not part:
                break
            answer += part
        return answer
    finally:
        sock.close()


def request_head(auth, extra: str) -> bytes:
    return (f"POST /cases/{CASE}/documents?filename=huge.pdf HTTP/1.1\r\nHost: test\r\n"
            f"Authorization: {auth()['Authorization']}\r\nContent-Type: application/octet-stream\r\n"
            f"{extra}\r\n").encode()


def test_100mb_declared_is_413_before_a_byte_is_read_and_nothing_stored(web):
    _, port, _, db, auth = web
    before = stored(db)
    answer = raw_request(port, request_head(auth, f"Content-Length: {100 * MB}\r\n"))
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"application/problem+json" in answer
    assert stored(db) == before


def test_100mb_streamed_without_a_length_is_413_and_the_partial_file_is_deleted(web):
    _, port, _, db, auth = web
    before = stored(db)
    block = b"%PDF-1.7\n" + b"0" * (MB - 9)

    def chunks():
        for _ in range(100):
            yield f"{len(block):x}\r\n".encode() + block + b"\r\n"
        yield b"0\r\n\r\n"

    answer = raw_request(port, request_head(auth, "Transfer-Encoding: chunked\r\n"), chunks())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    wait_until(lambda: stored(db) == before, 10, "the partial upload deleted")
