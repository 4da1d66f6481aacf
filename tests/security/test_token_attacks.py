"""Token attacks over HTTP against the running platform: every forged, stale or misdirected token is
refused (401) by the gateway (as a bearer) and by every service on its own port. A correctly minted
internal token is accepted (the control: the probes reach code that would answer 200)."""

from __future__ import annotations

import base64
import json
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from chassis.identity import Identity
from chassis.testing import report
from chassis.tokens import TokenMinter, load_signing_keys

pytestmark = pytest.mark.e2e

ISSUER = "family-story-gateway"
# a path of each service that needs a valid token and answers 200 to worker.a with one
PROBES = {
    "cases": "/me/cases",
    "catalogue": "/tools",
    "timeline": "/cases/case-1/entries",
    "documents": "/cases/case-1/documents",
    "messaging": "/me/unread",
    "plans": "/cases/case-1/plans",
    "referrals": "/settings/services",
}
GATEWAY_PROBES = ("/api/me", "/api/tools", "/api/tools/timeline/cases/case-1/entries", "/api/cases/me/cases")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def worker_claims() -> dict:
    return Identity(subject="sw1", actor="person", council_id="council-a", audience="staff",
                    roles=frozenset({"social_worker"}), cases={"case-1": "social_worker"}).to_claims()


def payload(audience: str, **over) -> dict:
    now = int(time.time())
    out = {**worker_claims(), "iss": ISSUER, "aud": audience, "iat": now, "nbf": now - 1, "exp": now + 30,
           "jti": uuid.uuid4().hex}
    out.update(over)
    return {k: v for k, v in out.items() if v is not None}


def forged_tokens(keys: dict, audience: str) -> dict[str, str]:
    kid = sorted(keys)[-1]
    real = keys[kid]
    now = int(time.time())
    foreign_ed = Ed25519PrivateKey.generate()
    foreign_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_jwk = json.loads(OKPAlgorithm.to_jwk(real.public_key()))
    good = payload(audience)

    def signed(claims: dict, key=real, headers: dict | None = None, alg: str = "EdDSA") -> str:
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, **(headers or {})})

    def unsigned(header: dict, claims: dict) -> str:
        return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}."

    def hs_with_public_key() -> str:
        # HS/RS confusion: an HMAC "signed" with the published public key as the secret
        import hashlib
        import hmac

        header = b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
        body = b64(json.dumps(good).encode())
        secret = base64.urlsafe_b64decode(public_jwk["x"] + "==")
        for candidate in (secret, json.dumps(public_jwk).encode()):
            sig = hmac.new(candidate, f"{header}.{body}".encode(), hashlib.sha256).digest()
            return f"{header}.{body}.{b64(sig)}"
        raise AssertionError

    return {
        "alg none": unsigned({"alg": "none", "kid": kid, "typ": "JWT"}, good),
        "alg None (capitalised), empty signature": unsigned({"alg": "None", "kid": kid}, good),
        "HS256 with the public key as secret (HS/RS confusion)": hs_with_public_key(),
        "RS256 by a foreign key with the real kid": signed(good, foreign_rsa, alg="RS256"),
        "expired": signed(payload(audience, iat=now - 600, nbf=now - 600, exp=now - 300)),
        "not yet valid": signed(payload(audience, iat=now + 300, nbf=now + 300, exp=now + 330)),
        "wrong audience (another service's token)": signed(payload("catalogue" if audience != "catalogue"
                                                                   else "timeline")),
        "wrong issuer": signed(payload(audience, iss="https://evil.example")),
        "unknown kid": jwt.encode(good, foreign_ed, algorithm="EdDSA", headers={"kid": "no-such-kid"}),
        "foreign Ed25519 key with the real kid": signed(good, foreign_ed),
        "jku header injection": signed(good, foreign_ed, headers={"jku": "http://127.0.0.1:9/jwks.json"}),
        "x5u header injection": signed(good, foreign_ed, headers={"x5u": "http://127.0.0.1:9/cert.pem"}),
        "jwk header injection (key embedded)": signed(good, foreign_ed, headers={
            "jwk": json.loads(OKPAlgorithm.to_jwk(foreign_ed.public_key()))}),
        "jku with the real key (key-bearing headers are refused outright)":
            signed(good, headers={"jku": "http://127.0.0.1:9/jwks.json"}),
        "an ID token of another issuer": jwt.encode(
            {"iss": "https://accounts.example.com", "aud": "family-story", "sub": "sw1", "email": "sw1@a.gov.uk",
             "iat": now, "exp": now + 300, "nonce": "n"}, foreign_rsa, algorithm="RS256",
            headers={"kid": json.loads(RSAAlgorithm.to_jwk(foreign_rsa.public_key())).get("kid", "idp-1")}),
        "lifetime longer than 60 s": signed(payload(audience, exp=now + 3600)),
        "no sub": signed(payload(audience, sub=None)),
        "tampered payload (a case added after signing)": (lambda t: ".".join(
            [t.split(".")[0], b64(json.dumps(payload(audience, cases={"case-1": "social_worker",
                                                                        "case-2": "manager"})).encode()),
             t.split(".")[2]]))(signed(good)),
        "garbage": "not.a.token",
    }


@pytest.fixture(scope="module")
def keys(platform):
    return load_signing_keys(platform.keys_dir)


def test_services_refuse_every_forged_token(platform, keys):
    minter = TokenMinter(keys, issuer=ISSUER, lifetime=30)
    refused, accepted, tried = 0, [], 0
    with httpx.Client(timeout=10) as http:
        for service, path in PROBES.items():
            url = platform.url(service) + path
            control = http.get(url, headers={"Authorization": "Bearer " + minter.mint(service, worker_claims())})
            assert control.status_code == 200, f"control: {service} {control.status_code} {control.text[:200]}"
            for name, token in forged_tokens(keys, service).items():
                tried += 1
                resp = http.get(url, headers={"Authorization": "Bearer " + token})
                if resp.status_code != 401:
                    accepted.append(f"{service}: {name} -> {resp.status_code} {resp.text[:120]}")
                else:
                    refused += 1
    report(f"token attacks on the services directly: {tried} tried "
          f"({len(forged_tokens(keys, 'x'))} variants x {len(PROBES)} services), {refused} refused (401), "
          f"{len(accepted)} accepted")
    assert not accepted, "\n".join(accepted)


def test_gateway_refuses_every_forged_token_as_bearer(platform, keys, client, sessions):
    minter = TokenMinter(keys, issuer=ISSUER, lifetime=30)
    variants = {**forged_tokens(keys, "timeline"),
                "a valid internal token (services' tokens are no sessions)": minter.mint("timeline", worker_claims()),
                "a valid internal token for the gateway": minter.mint("gateway", worker_claims())}
    # a signed-out ("disabled") person's session token: revoked at once
    session = client.sign_in("worker.a")
    assert session.get("/api/me").status_code == 200
    session.sign_out()
    variants["the session token of a signed-out person"] = session.token
    # a disabled person's session token: a council admin disables the carer after they signed in
    carer, admin = client.sign_in("carer.a"), sessions("admin.a")
    assert carer.get("/api/me").status_code == 200
    admin.ok("PUT", "/api/admin/people/cam/status", json={"disabled": True})
    variants["the session token of a disabled person"] = carer.token
    accepted, tried = [], 0
    try:
        with httpx.Client(base_url=platform.gateway_url, timeout=10) as http:
            for name, token in variants.items():
                for path in GATEWAY_PROBES:
                    tried += 1
                    resp = http.get(path, headers={"Authorization": "Bearer " + token})
                    if resp.status_code != 401:
                        accepted.append(f"{path}: {name} -> {resp.status_code} {resp.text[:120]}")
    finally:
        admin.ok("PUT", "/api/admin/people/cam/status", json={"disabled": False})
    report(f"token attacks on the gateway: {tried} tried ({len(variants)} variants x {len(GATEWAY_PROBES)} "
          f"paths), {len(accepted)} accepted")
    assert not accepted, "\n".join(accepted)


def test_a_session_token_is_no_internal_token(platform, client):
    session = client.sign_in("worker.a")
    with httpx.Client(timeout=10) as http:
        for service, path in PROBES.items():
            resp = http.get(platform.url(service) + path, headers={"Authorization": "Bearer " + session.token})
            assert resp.status_code == 401, f"{service} accepted a gateway session token"
