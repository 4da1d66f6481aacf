"""The proxy path: raw ASGI, outside connexion, as little work per request as possible.

    /api/tools/{tool_id}/{path}  -> the tool (if on for the caller's council and audience)
    /api/catalogue/{path}        -> service "catalogue" (always on for a signed-in caller)
    /api/cases/{path}            -> service "cases"     (always on for a signed-in caller)

Per request: session (cached), memberships and enabled tools (cached), an
internal token (reused while fresh), then one pooled aiohttp request whose
body is streamed from ASGI ``receive`` and whose answer is streamed back chunk
by chunk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import TYPE_CHECKING
from urllib.parse import unquote

import aiohttp
from yarl import URL

from chassis.discovery import ServiceNotFound
from chassis.problems import DomainError, problem_body

from .directory import UpstreamError

if TYPE_CHECKING:
    from .app import Gateway

log = logging.getLogger(__name__)

PLATFORM_PREFIXES = ((b"/api/catalogue", "catalogue"), (b"/api/cases", "cases"))
TOOLS_PREFIX = b"/api/tools/"
TOOL_ID = re.compile(r"^[a-z][a-z0-9-]{1,39}$")

# never forwarded upstream: hop-by-hop, the caller's credentials, what aiohttp sets itself
_DROP_REQUEST = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
    b"trailers", b"transfer-encoding", b"upgrade", b"authorization", b"cookie", b"host",
    b"x-forwarded-for", b"x-forwarded-host", b"x-forwarded-proto", b"forwarded",
})
# never passed back: hop-by-hop, and what the gateway decides itself (security headers, CORS)
_DROP_RESPONSE = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
    b"trailers", b"transfer-encoding", b"upgrade", b"x-content-type-options", b"referrer-policy",
    b"content-security-policy", b"strict-transport-security", b"server",
})
_SMALL_BODY = 64 * 1024


class ClientGone(Exception):
    """The caller went away while we were reading its body."""


def security_headers(production: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'"),
    ]
    if production:
        headers.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
    return headers


def match(raw_path: bytes) -> tuple[str, str | None, bytes] | None:
    """(kind, tool id or service, rest of the path) for a proxied path, None otherwise."""
    if raw_path.startswith(TOOLS_PREFIX):
        tool_id, _, rest = raw_path[len(TOOLS_PREFIX):].partition(b"/")
        if not tool_id:
            return None
        return "tool", unquote(tool_id.decode("latin-1")), rest
    for prefix, service in PLATFORM_PREFIXES:
        if raw_path.startswith(prefix):
            tail = raw_path[len(prefix):]
            if tail == b"" or tail[:1] == b"/":
                return "platform", service, tail[1:]
    return None


def _has_dot_segment(rest: bytes) -> bool:
    lowered = rest.lower()
    if b"." not in lowered and b"%2e" not in lowered:
        return False
    return any(unquote(seg.decode("latin-1")) in (".", "..") for seg in lowered.split(b"/"))


class Proxy:
    def __init__(self, gateway: Gateway):
        self.gw = gateway
        self.security = security_headers(gateway.settings.production)

    # --- answers the gateway writes itself ----------------------------------------
    async def problem(self, send, status: int, detail: str, extra: list[tuple[bytes, bytes]] = ()) -> None:
        body = json.dumps(problem_body(status, detail)).encode()
        headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode()),
                   *self.security, *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    # --- the hop ----------------------------------------------------------------------
    async def __call__(self, scope, receive, send, route: tuple[str, str | None, bytes]) -> None:
        kind, target, rest = route
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credential = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    token = credential.strip()
                break
        gw = self.gw
        try:
            principal = await gw.sessions.principal(token, use_cache=True) if token else None
            if principal is None:
                await self.problem(send, 401, "Sign in to use this.", [(b"www-authenticate", b"Bearer")])
                return
            if _has_dot_segment(rest):
                await self.problem(send, 404, "Not found.")
                return
            if kind == "tool":
                if not TOOL_ID.match(target or ""):
                    await self.problem(send, 404, "There is no such tool here.")
                    return
                tool = await gw.access.tool(principal, target)
                if tool.url:
                    base, audience = tool.url, tool.tool_id
                else:
                    audience = tool.service or tool.tool_id
                    base = gw.discovery.resolve(audience)
            else:
                audience = target
                base = gw.discovery.resolve(audience)
            cases = await gw.access.memberships(principal)
        except DomainError as exc:
            await self.problem(send, exc.status, exc.detail)
            return
        except (UpstreamError, ServiceNotFound, RuntimeError) as exc:
            log.warning("cannot route %s: %s", target, exc)
            await self.problem(send, 503, "This is not available right now; try again in a moment.")
            return

        client = scope.get("client")
        identity = gw.identity_for(principal, cases, client[0] if client else None)
        internal = gw.tokens.mint(audience, identity.to_claims())

        headers: list[tuple[str, str]] = [("Authorization", "Bearer " + internal)]
        has_body = False
        for name, value in scope["headers"]:
            if name in _DROP_REQUEST:
                if name == b"transfer-encoding":
                    has_body = True
                continue
            if name == b"content-length":
                has_body = value != b"0"
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
        if client:
            headers.append(("X-Forwarded-For", client[0]))

        url = base + "/" + rest.decode("latin-1")
        query = scope.get("query_string")
        if query:
            url += "?" + query.decode("latin-1")
        data = _body(receive) if has_body else None

        started = False
        try:
            async with gw.http.request(scope["method"], URL(url, encoded=True), headers=headers, data=data,
                                       allow_redirects=False) as resp:
                out = [(k.lower(), v) for k, v in resp.raw_headers]
                out = [(k, v) for k, v in out if k not in _DROP_RESPONSE and not k.startswith(b"access-control-")]
                out.extend(self.security)
                length = resp.content_length
                if length is not None and length <= _SMALL_BODY:
                    body = await resp.read()
                    await send({"type": "http.response.start", "status": resp.status, "headers": out})
                    started = True
                    await send({"type": "http.response.body", "body": body})
                    return
                await send({"type": "http.response.start", "status": resp.status, "headers": out})
                started = True
                async for chunk in resp.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        except ClientGone:
            return
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            if started:
                log.warning("upstream %s broke off its answer: %s", audience, type(exc).__name__)
                return
            if isinstance(exc, (aiohttp.ServerTimeoutError, asyncio.TimeoutError)):
                await self.problem(send, 504, "The tool took too long to answer.")
            elif isinstance(exc, aiohttp.ClientConnectorError):
                await self.problem(send, 503, "The tool cannot be reached right now; try again in a moment.")
            else:
                log.warning("upstream %s failed: %s", audience, type(exc).__name__)
                await self.problem(send, 502, "The tool gave no usable answer.")


async def _body(receive):
    """The caller's request body, chunk by chunk as it arrives."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
