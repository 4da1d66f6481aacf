"""Hardening over HTTP: deep JSON (nesting > 32) refused with 400 and huge JSON with 413 at every service
and the gateway; the gateway's security headers on every answer (HSTS in production); CORS closed."""

from __future__ import annotations

import json

import httpx
import pytest

from chassis.identity import Identity
from chassis.jsonguard import MAX_JSON_DEPTH, json_depth
from chassis.testing import report
from chassis.tokens import TokenMinter, load_signing_keys
from gateway.proxy import security_headers

pytestmark = pytest.mark.e2e

# a JSON-accepting operation of each service (path on the service, method)
JSON_OPS = {
    "cases": ("PUT", "/people/hardening-probe"),
    "catalogue": ("PUT", "/councils/council-a/tools/timeline"),
    "timeline": ("POST", "/cases/case-1/entries"),
    "documents": ("POST", "/cases/case-1/documents/no-such/restore"),
    "messaging": ("POST", "/cases/case-1/threads"),
    "plans": ("POST", "/cases/case-1/plans"),
    "referrals": ("POST", "/cases/case-1/referrals"),
}
GATEWAY_PREFIX = {"cases": "/api/cases", "catalogue": "/api/catalogue"}
JSON = {"Content-Type": "application/json"}


def deep(levels: int) -> bytes:
    return ("[" * levels + "1" + "]" * levels).encode()


def deep_object(levels: int) -> bytes:
    return ('{"a":' * levels + "1" + "}" * levels).encode()


def huge() -> bytes:
    return json.dumps({"title": "x" * (2 * 1024 * 1024)}).encode()


def test_depth_counting():
    assert json_depth(b'{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert json_depth(deep(33)) == 33
    assert json_depth(b'"\\"[[[["') == 0


@pytest.fixture(scope="module")
def internal(platform):
    minter = TokenMinter(load_signing_keys(platform.keys_dir), issuer="family-story-gateway", lifetime=30)
    who = Identity(subject="adm-a", actor="person", council_id="council-a", audience="staff",
                   roles=frozenset({"council_admin"}), cases={"case-1": "social_worker"})
    return lambda service: {"Authorization": "Bearer " + minter.mint(service, who.to_claims()), **JSON}


@pytest.mark.parametrize("service", sorted(JSON_OPS))
def test_every_service_refuses_deep_and_huge_json(service, platform, internal):
    method, path = JSON_OPS[service]
    with httpx.Client(base_url=platform.url(service), timeout=30) as http:
        for body in (deep(MAX_JSON_DEPTH + 1), deep(1000), deep_object(200)):
            resp = http.request(method, path, content=body, headers=internal(service))
            assert resp.status_code == 400, f"{service} deep JSON: {resp.status_code} {resp.text[:200]}"
            assert resp.headers["content-type"].startswith("application/problem+json")
        resp = http.request(method, path, content=huge(), headers=internal(service))
        assert resp.status_code == 413, f"{service} huge JSON: {resp.status_code} {resp.text[:200]}"
        # not signed in at all: refused too, and never with a server error
        resp = http.request(method, path, content=deep(100), headers=JSON)
        assert resp.status_code in (400, 401)


@pytest.mark.parametrize("service", sorted(JSON_OPS))
def test_gateway_refuses_deep_and_huge_json_on_the_way_to_each_service(service, sessions, planted):
    method, path = JSON_OPS[service]
    url = GATEWAY_PREFIX.get(service, f"/api/tools/{service}") + path
    admin = sessions("admin.a")
    resp = admin.request(method, url, content=deep(MAX_JSON_DEPTH + 1), headers=JSON)
    assert resp.status_code == 400, f"{url}: {resp.status_code} {resp.text[:200]}"
    resp = admin.request(method, url, content=huge(), headers=JSON)
    assert resp.status_code == 413, f"{url}: {resp.status_code} {resp.text[:200]}"


def test_gateway_own_operations_refuse_deep_and_huge_json(client):
    resp = client.http.post("/api/session", content=deep(MAX_JSON_DEPTH + 1), headers=JSON)
    assert resp.status_code == 400 and resp.headers["content-type"].startswith("application/problem+json")
    resp = client.http.post("/api/session", content=deep_object(500), headers=JSON)
    assert resp.status_code == 400
    resp = client.http.post("/api/session", content=huge(), headers=JSON)
    assert resp.status_code == 413
    # at the limit it is just JSON: a depth of 32 reaches validation (400 for a wrong shape, not refused early)
    resp = client.http.post("/api/session", content=deep(MAX_JSON_DEPTH), headers=JSON)
    assert resp.status_code == 400 and "deeper" not in resp.text


def _assert_secured(resp, where: str) -> None:
    h = resp.headers
    assert h.get("x-content-type-options") == "nosniff", where
    csp = h.get("content-security-policy", "")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, where
    assert h.get("referrer-policy") == "no-referrer", where
    assert "strict-transport-security" not in h, f"{where}: HSTS outside production"
    assert not any(k.lower().startswith("access-control-") for k in h), f"{where}: CORS header {dict(h)}"


def test_security_headers_on_every_gateway_answer(client, sessions, planted):
    worker, anon = sessions("worker.a"), client.anonymous()
    origin = {"Origin": "https://evil.example"}
    answers = {
        "front end": anon.get("/"),
        "static file": anon.get("/static/app.js"),
        "health": anon.get("/health"),
        "jwks": anon.get("/.well-known/jwks.json"),
        "not signed in": anon.get("/api/me"),
        "me": worker.get("/api/me", headers=origin),
        "own operation, bad body": anon.post("/api/session", json={"nope": 1}),
        "deep JSON refused": anon.post("/api/session", content=deep(40), headers=JSON),
        "unknown path": anon.get("/no/such/page"),
        "proxied, 200": worker.get("/api/tools/timeline/cases/case-1/entries", headers=origin),
        "proxied, 404 tool": worker.get("/api/tools/no-such-tool/x"),
        "proxied, not signed in": anon.get("/api/tools/timeline/cases/case-1/entries"),
        "proxied platform service": worker.get("/api/catalogue/tools", headers=origin),
        "document download": None,
    }
    docs = worker.get("/api/tools/documents/cases/case-1/documents").json()["items"]
    if docs:
        answers["document download"] = worker.get(
            f"/api/tools/documents/cases/case-1/documents/{docs[0]['document_id']}/content")
    for where, resp in answers.items():
        if resp is not None:
            _assert_secured(resp, where)
    report(f"security headers checked on {sum(1 for r in answers.values() if r is not None)} kinds of answer")


def test_cors_is_closed(client, sessions):
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    for path in ("/api/session", "/api/me", "/api/tools/timeline/cases/case-1/entries", "/api/catalogue/tools"):
        resp = client.http.options(path, headers=preflight)
        assert resp.status_code < 500
        assert not any(k.lower().startswith("access-control-") for k in resp.headers), (path, dict(resp.headers))
    resp = sessions("worker.a").get("/api/me", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in resp.headers


def test_hsts_in_production_only():
    production = dict(security_headers(True))
    assert production[b"strict-transport-security"].startswith(b"max-age=")
    assert int(production[b"strict-transport-security"].split(b"=")[1].split(b";")[0]) >= 31536000
    assert b"strict-transport-security" not in dict(security_headers(False))
    for headers in (security_headers(True), security_headers(False)):
        names = dict(headers)
        assert names[b"x-content-type-options"] == b"nosniff"
        assert b"frame-ancestors 'none'" in names[b"content-security-policy"]
        assert names[b"referrer-policy"] == b"no-referrer"
