"""OpenID Connect for staff: the relying party side (authorization code + PKCE, S256).

``start``: a fresh ``state`` (kept as its sha256 for ten minutes with the
nonce, the PKCE verifier, the council and a digest of a browser-binding
cookie) and the provider's authorization URL. ``finish``: the state is taken
once (a replay finds nothing), the browser must present the binding cookie,
the code is exchanged at the provider's token endpoint with the verifier, and
the ID token is verified against the provider's JWKS: signature (asymmetric
algorithms only), ``iss``, ``aud`` (and ``azp``), ``exp``/``iat``, ``nonce``;
then the e-mail must be verified and in one of the council's allowed domains.
The provider's metadata and keys are cached; an unknown ``kid`` refetches
the keys once (key rotation).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

log = logging.getLogger(__name__)

FLOW_SECONDS = 600
METADATA_SECONDS = 600
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
PURPOSE = "oidc"


class OidcRefused(Exception):
    """The sign-in is not accepted; the message is for the log only."""


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class ProviderSettings:
    council_id: str
    issuer: str
    client_id: str
    allowed_domains: tuple[str, ...]
    client_secret: str | None = None

    def allows(self, email: str) -> bool:
        domain = email.rpartition("@")[2].lower()
        return bool(email.count("@") == 1 and domain in self.allowed_domains)


def check_issuer_url(url: str, production: bool) -> None:
    parts = urlsplit(url)
    loopback = (parts.hostname or "") in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and (production or not loopback):
        raise OidcRefused(f"provider URL must be https: {url}")


class OidcRelyingParty:
    def __init__(self, http: Callable[[], aiohttp.ClientSession], production: bool,
                 clock: Callable[[], float] = time.time):
        self.http = http
        self.production = production
        self.clock = clock
        self._metadata: dict[str, tuple[float, dict]] = {}
        self._keys: dict[str, tuple[float, Any]] = {}

    # --- provider documents -------------------------------------------------------------
    async def _get(self, url: str) -> dict[str, Any]:
        check_issuer_url(url, self.production)
        try:
            async with self.http().get(url, headers={"Accept": "application/json"}) as resp:
                if resp.status != 200:
                    raise OidcRefused(f"{url} answered {resp.status}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OidcRefused(f"{url} unreachable: {type(exc).__name__}") from exc

    async def metadata(self, issuer: str) -> dict[str, Any]:
        hit = self._metadata.get(issuer)
        if hit and hit[0] > self.clock():
            return hit[1]
        doc = await self._get(issuer + "/.well-known/openid-configuration")
        if doc.get("issuer") != issuer:
            raise OidcRefused("discovery document names another issuer")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            check_issuer_url(str(doc.get(name) or ""), self.production)
        self._metadata[issuer] = (self.clock() + METADATA_SECONDS, doc)
        return doc

    async def keys(self, jwks_uri: str, refresh: bool = False):
        hit = self._keys.get(jwks_uri)
        if hit and hit[0] > self.clock() and not refresh:
            return hit[1]
        try:
            key_set = KeySet.import_key_set(await self._get(jwks_uri))
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise OidcRefused(f"provider keys unusable: {type(exc).__name__}") from exc
        self._keys[jwks_uri] = (self.clock() + METADATA_SECONDS, key_set)
        return key_set

    # --- the flow ----------------------------------------------------------------------------
    async def start(self, provider: ProviderSettings, redirect_uri: str) -> tuple[str, str, dict[str, Any], str]:
        """(authorization URL, state, flow data to keep under sha256(state), browser binding secret)."""
        meta = await self.metadata(provider.issuer)
        state, nonce, verifier, binding = (secrets.token_urlsafe(32) for _ in range(4))
        query = urlencode({
            "response_type": "code", "client_id": provider.client_id, "redirect_uri": redirect_uri,
            "scope": "openid email profile", "state": state, "nonce": nonce,
            "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256",
        })
        flow = {"council_id": provider.council_id, "nonce": nonce, "verifier": verifier,
                "binding": sha256(binding), "redirect_uri": redirect_uri}
        endpoint = meta["authorization_endpoint"]
        return endpoint + ("&" if "?" in endpoint else "?") + query, state, flow, binding

    async def finish(self, provider: ProviderSettings, flow: dict[str, Any], code: str) -> dict[str, Any]:
        """The verified ID token's claims (email checked against the allowed domains)."""
        meta = await self.metadata(provider.issuer)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": flow["redirect_uri"],
                "code_verifier": flow["verifier"], "client_id": provider.client_id}
        auth = aiohttp.BasicAuth(provider.client_id, provider.client_secret) if provider.client_secret else None
        try:
            async with self.http().post(meta["token_endpoint"], data=form, auth=auth,
                                        headers={"Accept": "application/json"}) as resp:
                answer = await resp.json(content_type=None)
                if resp.status != 200:
                    raise OidcRefused(f"token endpoint answered {resp.status}: {answer.get('error')}")
        except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError) as exc:
            raise OidcRefused(f"token endpoint failed: {type(exc).__name__}") from exc
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise OidcRefused("no ID token")
        claims = await self.verify_id_token(meta, provider, id_token, flow["nonce"])
        email = claims.get("email")
        if not isinstance(email, str) or claims.get("email_verified") is False:
            raise OidcRefused("no verified e-mail in the ID token")
        if not provider.allows(email):
            raise OidcRefused("e-mail domain not allowed for this council")
        return dict(claims)

    async def verify_id_token(self, meta: dict[str, Any], provider: ProviderSettings, id_token: str,
                              nonce: str) -> dict[str, Any]:
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self.clock()), leeway=60,
            iss={"essential": True, "value": provider.issuer},
            aud={"essential": True, "value": provider.client_id},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        token = None
        for attempt in (0, 1):
            key_set = await self.keys(meta["jwks_uri"], refresh=attempt == 1)
            try:
                token = jwt.decode(id_token, key_set, algorithms=ALGORITHMS)
                break
            except (ValueError, KeyError) as exc:  # no key with that kid: fetch the keys again, once
                if attempt == 1 or isinstance(exc, JoseError):
                    raise OidcRefused(f"ID token refused: {type(exc).__name__}: {exc}") from exc
            except (JoseError, TypeError) as exc:
                raise OidcRefused(f"ID token refused: {type(exc).__name__}: {exc}") from exc
        claims = token.claims
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise OidcRefused(f"ID token refused: {exc}") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != provider.client_id:
            raise OidcRefused("ID token for several audiences without our azp")
        return claims
