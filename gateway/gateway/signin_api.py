"""Handlers of the sign-in operations (contracts/gateway.yaml): parse, call ``signin.SignIn``, shape.

Every refused credential answers ``401 That sign-in was not accepted.`` and a
locked login or address ``429`` with ``Retry-After``, the same whether the
login exists or not.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from connexion import context as ctx
from starlette.responses import Response

from chassis.problems import (
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    Unauthenticated,
    problem_body,
    problem_response,
)

from . import csrf
from .directory import UpstreamError
from .identity import Principal
from .notify import NotifyError
from .oidc import FLOW_SECONDS, OidcRefused, ProviderSettings, sha256
from .oidc import PURPOSE as OIDC_PURPOSE
from .signin import SECOND_FACTOR_SECONDS, Locked, SignInRefused, WrongCode

log = logging.getLogger(__name__)

SIGN_IN_REFUSED = "That sign-in was not accepted."
OIDC_BINDING_COOKIE = "fs_oidc"
SECOND_FACTOR_COOKIE = "fs_second_factor"
SECOND_FACTOR_PATH = "/api/second-factor"
SECOND_FACTOR_PAGE = "/#second-factor"
SECOND_FACTOR_GONE = "Sign in again: there is no second-factor step waiting (or it has expired)."
_JSON = {"Content-Type": "application/json"}


def _gateway():
    from .app import SCOPE_KEY

    return ctx.scope[SCOPE_KEY]


def _ip() -> str | None:
    client = ctx.scope.get("client")
    return client[0] if client else None


def _principal() -> Principal:
    info = ctx.context.get("token_info")
    if not info:
        raise Unauthenticated("Sign in to use this.")
    return info["principal"]


def _person(principal: Principal) -> dict:
    return {"person_id": principal.person_id, "council_id": principal.council_id,
            "display_name": principal.display_name, "kind": principal.kind, "roles": list(principal.roles)}


def _refused():
    return problem_response(401, SIGN_IN_REFUSED, headers={"WWW-Authenticate": "Bearer"})


def _locked(exc: Locked):
    return problem_response(429, "Too many attempts; wait a while and try again.",
                            headers={"Retry-After": str(exc.retry_after)})


async def _session_answer(principal: Principal):
    token, expires_at = await _gateway().sessions.open(principal)
    return {"token": token, "expires_at": expires_at.isoformat(), "person": _person(principal)}, 201, _JSON


# --- POST /api/session ----------------------------------------------------------------------
async def create_session(body: dict):
    """Password (+ TOTP) sign-in when a password is given; otherwise the demo provider (never in production)."""
    signin = _gateway().signin
    try:
        if "password" in body:
            principal = await signin.with_password(body, _ip())
        else:
            if signin.demo is None:
                raise NotFound("There is no demo sign-in here.")
            principal = await signin.with_demo(body, _ip())
    except SignInRefused:
        return _refused()
    except Locked as exc:
        return _locked(exc)
    return await _session_answer(principal)


async def delete_session():
    gateway = _gateway()
    await gateway.sessions.revoke(ctx.context["token_info"]["session_token"])
    response = Response(status_code=204)
    for name, value in csrf.clear_cookies(gateway.settings.production):
        response.headers.append(name.decode(), value.decode())
    return response


# --- OpenID Connect ---------------------------------------------------------------------------
def _public_url() -> str:
    gateway = _gateway()
    if gateway.config.public_url:
        return gateway.config.public_url
    if gateway.settings.production:
        raise ServiceUnavailable("GATEWAY_PUBLIC_URL is not set.")
    host = next((v.decode("latin-1") for k, v in ctx.scope["headers"] if k == b"host"), "127.0.0.1")
    return f"{ctx.scope.get('scheme', 'http')}://{host}"


async def _sign_in_settings(council_id: str) -> dict:
    try:
        return await _gateway().access.catalogue.sign_in_settings(council_id)
    except UpstreamError as exc:
        raise ServiceUnavailable("Sign-in cannot be set up right now; try again in a moment.") from exc


async def _provider(council_id: str, settings: dict | None = None) -> ProviderSettings:
    gateway = _gateway()
    settings = settings if settings is not None else await _sign_in_settings(council_id)
    oidc = settings.get("oidc")
    if not oidc:
        raise NotFound("This council has no organisation sign-in.")
    secret = None
    if oidc.get("client_secret_env"):
        secret = gateway.settings.get(oidc["client_secret_env"]) or None
    return ProviderSettings(council_id, oidc["issuer"].rstrip("/"), oidc["client_id"],
                            tuple(d.lower() for d in oidc["allowed_domains"]), secret)


def _binding_cookie(value: str, max_age: int) -> str:
    secure = "; Secure" if _gateway().settings.production else ""
    return f"{OIDC_BINDING_COOKIE}={value}; Max-Age={max_age}; Path=/api/oidc; HttpOnly; SameSite=Lax{secure}"


async def oidc_start(council_id: str):
    """303 to the council's provider; the flow is bound to this browser by a cookie."""
    gateway = _gateway()
    provider = await _provider(council_id)
    try:
        url, state, flow, binding = await gateway.signin.oidc.start(provider, _public_url() + "/api/oidc/callback")
    except OidcRefused as exc:
        log.warning("OIDC start for %s failed: %s", council_id, exc)
        raise ServiceUnavailable("Your organisation's sign-in cannot be reached right now.") from exc
    await gateway.signin.store.put_one_time(sha256(state), OIDC_PURPOSE, flow, gateway.signin.clock() + FLOW_SECONDS)
    response = Response(status_code=303, headers={"Location": url, "Cache-Control": "no-store"})
    response.headers.append("Set-Cookie", _binding_cookie(binding, FLOW_SECONDS))
    return response


async def oidc_callback(state: str = "", code: str = "", error: str = "", **_ignored):
    """The provider sends the browser back here: check everything, open a web session (cookies), 303 to /."""
    gateway = _gateway()
    signin = gateway.signin
    flow = await signin.store.take_one_time(sha256(state), OIDC_PURPOSE, signin.clock()) if state else None
    binding = csrf.parse_cookies(ctx.scope["headers"]).get(OIDC_BINDING_COOKIE, "")
    try:
        if flow is None:
            raise OidcRefused("unknown, used or expired state")
        if not binding or sha256(binding) != flow["binding"]:
            raise OidcRefused("flow started in another browser")
        if error or not code:
            raise OidcRefused(f"provider answered {error or 'no code'}")
        settings = await _sign_in_settings(flow["council_id"])
        provider = await _provider(flow["council_id"], settings)
        claims = await signin.oidc.finish(provider, flow, code)
        principal = await signin.with_oidc_claims(flow["council_id"], claims)
    except (OidcRefused, SignInRefused, NotFound) as exc:
        log.info("OIDC sign-in refused: %s", exc)
        return _refused()
    if settings.get("staff_totp_required"):
        # the council requires TOTP of its staff: no session yet, only the second-factor step
        pending = await signin.begin_second_factor(principal)
        response = Response(status_code=303, headers={"Location": SECOND_FACTOR_PAGE, "Cache-Control": "no-store"})
        response.headers.append("Set-Cookie", _second_factor_cookie(pending, SECOND_FACTOR_SECONDS))
        response.headers.append("Set-Cookie", _binding_cookie("", 0))
        return response
    response = Response(status_code=303, headers={"Location": "/", "Cache-Control": "no-store"})
    _set_session_cookies(response, await gateway.sessions.open(principal))
    response.headers.append("Set-Cookie", _binding_cookie("", 0))
    return response


def _set_session_cookies(response: Response, session) -> None:
    gateway = _gateway()
    token, _expires_at = session
    secure = gateway.settings.production
    for name, value in csrf.session_cookies(token, csrf.new_csrf_token(), gateway.config.session_ttl, secure):
        response.headers.append(name.decode(), value.decode())


# --- the second factor after an OIDC sign-in --------------------------------------------------------
def _second_factor_cookie(value: str, max_age: int) -> str:
    secure = "; Secure" if _gateway().settings.production else ""
    return (f"{SECOND_FACTOR_COOKIE}={value}; Max-Age={max_age}; Path={SECOND_FACTOR_PATH}; HttpOnly; "
            f"SameSite=Strict{secure}")


def _pending_token() -> str:
    """The pending second-factor state this browser holds (its cookie only: never a bearer token)."""
    if ctx.scope["method"] not in ("GET", "HEAD") and not csrf.same_origin(ctx.scope["headers"]):
        raise Forbidden("This request must come from this site's own page.")
    return csrf.parse_cookies(ctx.scope["headers"]).get(SECOND_FACTOR_COOKIE, "")


def _no_second_factor():
    return problem_response(401, SECOND_FACTOR_GONE)


async def second_factor_status():
    """What the pending state needs; nothing about the person."""
    account = await _gateway().signin.pending_second_factor(_pending_token())
    if account is None:
        return _no_second_factor()
    return {"status": "second_factor_required", "method": "totp", "enrolled": account.totp_enabled}, 200, _JSON


async def second_factor_enrol():
    try:
        secret, uri = await _gateway().signin.second_factor_enrol(_pending_token())
    except SignInRefused:
        return _no_second_factor()
    return {"secret": secret, "otpauth_uri": uri}, 201, _JSON


async def second_factor_confirm(body: dict):
    gateway = _gateway()
    try:
        principal = await gateway.signin.second_factor_confirm(_pending_token(), body["code"], _ip())
    except SignInRefused:
        return _no_second_factor()
    except WrongCode:
        return problem_response(422, "That code is not right; check your authenticator app's clock and try again.")
    except Locked as exc:
        return _locked(exc)
    session = await gateway.sessions.open(principal)
    answer = {"expires_at": session[1].isoformat(), "person": _person(principal)}
    response = Response(json.dumps(answer), status_code=200, media_type="application/json",
                        headers={"Cache-Control": "no-store"})
    _set_session_cookies(response, session)
    response.headers.append("Set-Cookie", _second_factor_cookie("", 0))
    return response


# --- invitations, passwords, TOTP -----------------------------------------------------------------
async def create_invitation(body: dict):
    principal = _principal()
    try:
        expires = await _gateway().signin.invite(principal, body["case_id"], body["person_id"], body["send_to"],
                                                 body["display_name"])
    except UpstreamError as exc:
        raise ServiceUnavailable("Cases cannot be looked up right now; try again in a moment.") from exc
    except NotifyError as exc:
        log.error("invitation not sent: %s", exc)
        raise ServiceUnavailable("The invitation could not be sent; try again in a moment.") from exc
    return {"case_id": body["case_id"], "person_id": body["person_id"],
            "expires_at": datetime.fromtimestamp(expires, UTC).isoformat()}, 201, _JSON


async def accept_invitation(body: dict):
    try:
        principal = await _gateway().signin.accept(body["code"], body["password"], _ip())
    except SignInRefused:
        return problem_response(401, "That code is not right, or it has been used or has expired.")
    except Locked as exc:
        return _locked(exc)
    return await _session_answer(principal)


async def start_totp():
    secret, uri = await _gateway().signin.totp_begin(_principal())
    return {"secret": secret, "otpauth_uri": uri}, 201, _JSON


async def confirm_totp(body: dict):
    await _gateway().signin.totp_confirm(_principal(), body["code"])
    return Response(status_code=204)


async def request_password_reset(body: dict):
    try:
        await _gateway().signin.request_reset(body["login"], _ip())
    except Locked as exc:
        return _locked(exc)
    except NotifyError as exc:
        log.error("password reset not sent: %s", exc)  # the same answer: nothing to learn from it
    return {"status": "sent if the account exists"}, 202, _JSON


async def complete_password_reset(body: dict):
    try:
        await _gateway().signin.complete_reset(body["login"], body["code"], body["password"], _ip())
    except SignInRefused:
        return problem_response(401, "That code is not right, or it has been used or has expired.")
    except Locked as exc:
        return _locked(exc)
    return Response(status_code=204)


# --- council administration ---------------------------------------------------------------------
def _account(account) -> dict:
    return {"person_id": account.person_id, "council_id": account.council_id, "login": account.login,
            "display_name": account.display_name, "kind": account.kind, "roles": list(account.roles),
            "disabled": account.disabled, "has_password": bool(account.password_hash),
            "totp_enabled": account.totp_enabled}


async def put_staff_account(person_id: str, body: dict):
    account = await _gateway().signin.register_staff(_principal(), person_id, body["login"], body["display_name"],
                                                     body.get("roles", []))
    return _account(account), 200, _JSON


async def put_person_status(person_id: str, body: dict):
    account = await _gateway().signin.set_disabled(_principal(), person_id, body["disabled"])
    return _account(account), 200, _JSON


# --- machines -----------------------------------------------------------------------------------------
def _client(doc: dict) -> dict:
    return {"client_id": doc["_id"], "name": doc["name"], "scopes": list(doc["scopes"]),
            "created_by": doc["created_by"],
            "created_at": datetime.fromtimestamp(doc["created_at"], UTC).isoformat()}


async def create_client(body: dict):
    try:
        doc, secret = await _gateway().signin.register_client(_principal(), body["name"], body["scopes"])
    except UpstreamError as exc:
        raise ServiceUnavailable("The council's tools cannot be looked up right now.") from exc
    return {**_client(doc), "client_secret": secret}, 201, _JSON


async def list_clients():
    return {"items": [_client(d) for d in await _gateway().signin.clients(_principal())]}, 200, _JSON


async def delete_client(client_id: str):
    await _gateway().signin.delete_client(_principal(), client_id)
    return Response(status_code=204)


def _oauth_error(status: int, error: str, detail: str, headers: dict | None = None):
    """RFC 6749 §5.2 ``error`` inside a problem+json body (both kinds of client understand it)."""
    body = {**problem_body(status, detail), "error": error}
    return Response(json.dumps(body), status_code=status, media_type="application/problem+json",
                    headers={"Cache-Control": "no-store", **(headers or {})})


def _basic_credentials() -> tuple[str, str] | None:
    import base64
    from urllib.parse import unquote_plus

    value = next((v.decode("latin-1") for k, v in ctx.scope["headers"] if k == b"authorization"), "")
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return unquote_plus(client_id), unquote_plus(secret)


async def issue_token(body: dict):
    """OAuth2 client credentials (RFC 6749 §4.4): client_secret_basic or client_secret_post."""
    if body.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "Only client_credentials is supported here.")
    credentials = _basic_credentials() or (body.get("client_id") or "", body.get("client_secret") or "")
    if not credentials[0] or not credentials[1]:
        return _oauth_error(401, "invalid_client", "Client authentication failed.", {"WWW-Authenticate": "Basic"})
    try:
        token, expires, scopes = await _gateway().signin.client_token(*credentials, body.get("scope"), _ip())
    except SignInRefused:
        return _oauth_error(401, "invalid_client", "Client authentication failed.", {"WWW-Authenticate": "Basic"})
    except Locked as exc:
        return _oauth_error(429, "slow_down", "Too many attempts; wait a while and try again.",
                            {"Retry-After": str(exc.retry_after)})
    except InvalidInput:
        return _oauth_error(400, "invalid_scope", "The scope asked for is beyond what this client was given.")
    except UpstreamError:
        return _oauth_error(503, "temporarily_unavailable", "Try again in a moment.")
    expires_in = max(0, int(expires - _gateway().signin.clock()))
    answer = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in, "scope": " ".join(scopes)}
    return Response(json.dumps(answer), status_code=200, media_type="application/json",
                    headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


