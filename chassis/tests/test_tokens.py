"""Internal tokens: what a service accepts and the attacks it refuses."""

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from chassis.identity import Identity
from chassis.tokens import InvalidToken, TokenMinter, TokenVerifier, generate_key, jwks_of, load_signing_keys

ISSUER = "family-story-gateway"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    generate_key(d, "k1")
    return load_signing_keys(d)


@pytest.fixture(scope="module")
def jwks_file(tmp_path_factory, keys):
    p = tmp_path_factory.mktemp("jwks") / "jwks.json"
    p.write_text(json.dumps(jwks_of(keys)))
    return str(p)


@pytest.fixture
def verifier(jwks_file):
    return TokenVerifier(jwks_file, audience="timeline", issuer=ISSUER)


def claims(**over):
    now = int(time.time())
    base = {"sub": "p1", "actor": "person", "council": "c1", "iss": ISSUER, "aud": "timeline",
            "iat": now, "nbf": now - 1, "exp": now + 30}
    base.update(over)
    return base


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class TestAcceptedToken:
    def test_minted_token_round_trips_the_identity(self, keys, verifier):
        ident = Identity("p1", "person", "c1", "families", frozenset(), frozenset(), {"case-1": "parent"}, "10.0.0.1")
        token = TokenMinter(keys, ISSUER).mint("timeline", ident.to_claims())
        got = Identity.from_claims(verifier.verify(token))
        assert (got.subject, got.council_id, got.audience, got.cases) == ("p1", "c1", "families", {"case-1": "parent"})

    def test_minter_refuses_lifetimes_over_sixty_seconds(self, keys):
        with pytest.raises(ValueError):
            TokenMinter(keys, ISSUER, lifetime=61)


def attack_tokens(keys):
    key = keys["k1"]
    foreign = Ed25519PrivateKey.generate()
    rsa = generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    sign = lambda c, k=key, h=None: jwt.encode(c, k, algorithm="EdDSA", headers={"kid": "k1", **(h or {})})
    now = int(time.time())
    return {
        "alg none": f"{b64({'alg': 'none', 'kid': 'k1'})}.{b64(claims())}.",
        "HS256 keyed with the public key": jwt.encode(claims(), public_pem.decode()[:64], algorithm="HS256",
                                                      headers={"kid": "k1"}),
        "RS256 with an attacker key": jwt.encode(claims(), rsa, algorithm="RS256", headers={"kid": "k1"}),
        "expired": sign(claims(iat=now - 120, nbf=now - 120, exp=now - 60)),
        "not yet valid": sign(claims(nbf=now + 300, exp=now + 330, iat=now + 300)),
        "wrong audience": sign(claims(aud="cases")),
        "wrong issuer": sign(claims(iss="someone-else")),
        "unknown kid": jwt.encode(claims(), key, algorithm="EdDSA", headers={"kid": "k9"}),
        "foreign key with our kid": sign(claims(), foreign),
        "jku header": sign(claims(), h={"jku": "https://evil.example/jwks.json"}),
        "x5u header": sign(claims(), h={"x5u": "https://evil.example/cert.pem"}),
        "jwk header": sign(claims(), foreign, h={"jwk": json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(
            foreign.public_key()))}),
        "lifetime over 60 s": sign(claims(exp=now + 3600)),
        "no subject": sign({k: v for k, v in claims().items() if k != "sub"}),
        "garbage": "not.a.token",
    }


@pytest.mark.parametrize("name", [
    "alg none", "HS256 keyed with the public key", "RS256 with an attacker key", "expired", "not yet valid",
    "wrong audience", "wrong issuer", "unknown kid", "foreign key with our kid", "jku header", "x5u header",
    "jwk header", "lifetime over 60 s", "no subject", "garbage"])
def test_service_refuses_token_attack(name, keys, verifier):
    token = attack_tokens(keys)[name]
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_rotated_key_is_picked_up_without_restart(tmp_path, keys):
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(jwks_of(keys)))
    verifier = TokenVerifier(str(jwks), audience="timeline", issuer=ISSUER)
    assert verifier.verify(TokenMinter(keys, ISSUER).mint("timeline", {"sub": "p1"}))
    generate_key(tmp_path / "newkeys", "k2")
    rotated = {**keys, **load_signing_keys(tmp_path / "newkeys")}
    jwks.write_text(json.dumps(jwks_of(rotated)))
    minter = TokenMinter(rotated, ISSUER)
    assert minter.kid == "k2"
    assert verifier.verify(minter.mint("timeline", {"sub": "p1"}))["sub"] == "p1"
