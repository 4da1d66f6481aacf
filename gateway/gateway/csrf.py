"""Web sessions in cookies, and the double-submit CSRF check.

A browser signed in through OpenID Connect holds two cookies: ``fs_session``
(the session token; HttpOnly, SameSite=Lax, Secure outside development, path
``/``) and ``fs_csrf`` (a random token the page's script reads). When a
request carries no ``Authorization`` header, the session cookie authenticates
it — but for an unsafe method (anything but GET, HEAD, OPTIONS) only if the
``X-CSRF-Token`` header equals the ``fs_csrf`` cookie and any ``Origin`` header
is this gateway's own. A bearer token in ``Authorization`` always wins and
needs no CSRF token (a cross-site page cannot set that header).
"""

from __future__ import annotations

import hmac
import secrets
from http.cookies import CookieError, SimpleCookie

SESSION_COOKIE = "fs_session"
CSRF_COOKIE = "fs_csrf"
CSRF_HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# unsafe operations that need no session: a stale cookie must not block them
PUBLIC_UNSAFE = frozenset(("POST", path) for path in (
    "/api/session", "/api/oauth/token", "/api/invitations/accept", "/api/password-reset",
    "/api/password-reset/complete", "/api/second-factor/totp", "/api/second-factor/confirm"))
REFUSED = "This request needs the X-CSRF-Token header of your page (or a bearer token)."


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def parse_cookies(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    jar: dict[str, str] = {}
    for name, value in headers:
        if name == b"cookie":
            cookie = SimpleCookie()
            try:
                cookie.load(value.decode("latin-1"))
            except CookieError:
                continue
            jar.update({k: m.value for k, m in cookie.items()})
    return jar


def _header(headers, wanted: bytes) -> bytes | None:
    return next((v for k, v in headers if k == wanted), None)


def same_origin(headers) -> bool:
    """No ``Origin`` header, or this gateway's own."""
    return _same_origin(headers)


def _same_origin(headers) -> bool:
    origin = _header(headers, b"origin")
    if origin is None:
        return True
    host = _header(headers, b"host") or b""
    return origin.split(b"://", 1)[-1] == host


def authenticate_cookie(scope) -> tuple[dict, bool]:
    """(scope, refused): the scope with the session cookie turned into a bearer ``Authorization`` header
    when it may authenticate this request; ``refused`` when an unsafe request had only a cookie without
    a matching CSRF token."""
    headers = scope["headers"]
    if any(k == b"authorization" for k, _ in headers):
        return scope, False
    cookies = parse_cookies(headers)
    session = cookies.get(SESSION_COOKIE)
    if not session:
        return scope, False
    if scope["method"] not in SAFE_METHODS:
        sent = _header(headers, CSRF_HEADER)
        expected = cookies.get(CSRF_COOKIE, "")
        ok = bool(expected) and sent is not None and hmac.compare_digest(sent, expected.encode("latin-1"))
        if not ok or not _same_origin(headers):
            return scope, (scope["method"], scope["path"]) not in PUBLIC_UNSAFE
    return {**scope, "headers": [*headers, (b"authorization", b"Bearer " + session.encode("latin-1"))]}, False


def session_cookies(token: str, csrf_token: str, max_age: int, secure: bool) -> list[tuple[bytes, bytes]]:
    """Set-Cookie headers for a new web session."""
    flags = "; Path=/; SameSite=Lax" + ("; Secure" if secure else "")
    return [
        (b"set-cookie", f"{SESSION_COOKIE}={token}; Max-Age={max_age}; HttpOnly{flags}".encode()),
        (b"set-cookie", f"{CSRF_COOKIE}={csrf_token}; Max-Age={max_age}{flags}".encode()),
    ]


def clear_cookies(secure: bool) -> list[tuple[bytes, bytes]]:
    flags = "; Path=/; SameSite=Lax" + ("; Secure" if secure else "")
    return [(b"set-cookie", f"{name}=; Max-Age=0{flags}".encode()) for name in (SESSION_COOKIE, CSRF_COOKIE)]
