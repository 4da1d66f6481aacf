"""Internal tokens: minted by the gateway, verified by every service.

Ed25519 signatures (``EdDSA``) with a ``kid``; the public keys are published
as a JWKS. Services accept only this algorithm, only known key ids, only
their own audience, only the gateway's issuer and only unexpired tokens.
Headers that try to bring their own key (``jku``, ``x5u``, ``jwk``, ``x5c``)
are refused outright.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt.algorithms import OKPAlgorithm

ALGORITHM = "EdDSA"
MAX_LIFETIME_SECONDS = 60
_FORBIDDEN_HEADERS = {"jku", "x5u", "jwk", "x5c", "crit"}


class InvalidToken(Exception):
    """The token is not one this service accepts; the reason stays in the log."""


def generate_key(directory: Path, kid: str | None = None) -> str:
    """Create an Ed25519 key pair in ``directory``; returns its kid."""
    directory.mkdir(parents=True, exist_ok=True)
    kid = kid or time.strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:8]
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = directory / f"{kid}.pem"
    path.write_bytes(pem)
    path.chmod(0o600)
    return kid


def load_signing_keys(directory: Path) -> dict[str, Ed25519PrivateKey]:
    keys: dict[str, Ed25519PrivateKey] = {}
    for pem in sorted(directory.glob("*.pem")):
        key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{pem.name} is not an Ed25519 key")
        keys[pem.stem] = key
    return keys


def jwks_of(keys: dict[str, Ed25519PrivateKey]) -> dict:
    """The public JWKS for a set of signing keys."""
    out = []
    for kid, key in keys.items():
        jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
        out.append(jwk)
    return {"keys": out}


class TokenMinter:
    """Mints internal tokens with the newest key of a key directory.

    Rotation without downtime: add a new key (it becomes the signing key at the
    next load), keep the old one in the JWKS until tokens signed with it have
    expired (at most ``MAX_LIFETIME_SECONDS``), then remove it.
    """

    def __init__(self, keys: dict[str, Ed25519PrivateKey], issuer: str, lifetime: int = 30):
        if not keys:
            raise ValueError("no signing key")
        if lifetime > MAX_LIFETIME_SECONDS:
            raise ValueError("internal tokens live at most 60 s")
        self.keys = keys
        self.kid = sorted(keys)[-1]
        self.issuer = issuer
        self.lifetime = lifetime

    def jwks(self) -> dict:
        return jwks_of(self.keys)

    def mint(self, audience: str, claims: dict[str, Any]) -> str:
        now = int(time.time())
        payload = {
            **claims,
            "iss": self.issuer,
            "aud": audience,
            "iat": now,
            "nbf": now - 1,
            "exp": now + self.lifetime,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self.keys[self.kid], algorithm=ALGORITHM, headers={"kid": self.kid, "typ": "fs-internal+jwt"})


@dataclass
class _KeySet:
    keys: dict[str, Ed25519PublicKey]
    loaded_at: float


class TokenVerifier:
    """Verifies internal tokens against the gateway's JWKS (a file or a URL)."""

    def __init__(self, jwks_source: str, audience: str, issuer: str, refresh_after: float = 300.0,
                 leeway: int = 2):
        if not jwks_source:
            raise ValueError("INTERNAL_JWKS is not set: a service cannot verify tokens without it")
        self.source = jwks_source
        self.audience = audience
        self.issuer = issuer
        self.refresh_after = refresh_after
        self.leeway = leeway
        self._lock = threading.Lock()
        self._keyset: _KeySet | None = None
        self._last_forced_refresh = 0.0

    def _fetch(self) -> dict:
        if self.source.startswith(("http://", "https://")):
            with urlopen(self.source, timeout=5) as resp:
                return json.load(resp)
        return json.loads(Path(self.source).read_text())

    def _load(self) -> _KeySet:
        doc = self._fetch()
        keys: dict[str, Ed25519PublicKey] = {}
        for jwk in doc.get("keys", []):
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519" or "kid" not in jwk:
                continue
            key = OKPAlgorithm.from_jwk(json.dumps(jwk))
            if isinstance(key, Ed25519PublicKey):
                keys[jwk["kid"]] = key
        return _KeySet(keys, time.monotonic())

    def _key_for(self, kid: str) -> Ed25519PublicKey:
        with self._lock:
            now = time.monotonic()
            if self._keyset is None or now - self._keyset.loaded_at > self.refresh_after:
                self._keyset = self._load()
            key = self._keyset.keys.get(kid)
            # an unknown kid may be a freshly rotated key: look again, at most every 5 s
            if key is None and now - self._last_forced_refresh > 5:
                self._last_forced_refresh = now
                self._keyset = self._load()
                key = self._keyset.keys.get(kid)
        if key is None:
            raise InvalidToken("unknown kid")
        return key

    def verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidToken("algorithm not allowed")
        if _FORBIDDEN_HEADERS & set(header):
            raise InvalidToken("key-bearing header refused")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("no kid")
        key = self._key_for(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from exc
        if claims["exp"] - claims["iat"] > MAX_LIFETIME_SECONDS:
            raise InvalidToken("lifetime too long")
        return claims
