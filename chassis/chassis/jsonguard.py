"""JSON bodies too deep or too large are refused before anything parses them.

``JsonGuardMiddleware`` (ASGI) reads a JSON request body (``application/json`` or ``*+json``) up to
``max_bytes`` (413 beyond, declared or streamed) and refuses nesting deeper than ``max_depth``
(400): a deeply nested document costs the parser and the validator recursion and time out of
proportion to its size. Other bodies pass through untouched (streamed uploads keep streaming).
A path with a control character (no id has one) answers 404 before routing.
"""

from __future__ import annotations

import json
import re

from .problems import problem_body

MAX_JSON_DEPTH = 32
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKETS = re.compile(rb"[\[\]{}]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def json_depth(body: bytes) -> int:
    """The deepest nesting of objects/arrays in a JSON text (strings ignored); malformed text counts as is."""
    depth = deepest = 0
    for m in _BRACKETS.finditer(_STRING.sub(b'""', body)):
        if m.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _is_json(headers) -> bool:
    for key, value in headers:
        if key == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


def _problem(status: int, title: str, detail: str) -> tuple[dict, bytes]:
    body = json.dumps(problem_body(status, detail)).encode()
    return ({"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/problem+json"),
                         (b"content-length", str(len(body)).encode())]}, body)


def body_limit_for(path: str, default: int, overrides: dict[str, int] | None) -> int:
    """The body limit of a path: an override whose key is a prefix or suffix of it, else the default."""
    for key, limit in (overrides or {}).items():
        if path.startswith(key) or path.endswith(key):
            return limit
    return default


class JsonGuardMiddleware:
    def __init__(self, app, max_bytes: int = 1_048_576, max_depth: int = MAX_JSON_DEPTH,
                 overrides: dict[str, int] | None = None):
        self.app = app
        self.default_max_bytes = max_bytes
        self.overrides = overrides
        self.max_depth = max_depth

    async def _refuse(self, send, status: int, title: str, detail: str) -> None:
        start, body = _problem(status, title, detail)
        await send(start)
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if _CONTROL.search(scope.get("path", "")):
            # no id has a control character; a newline in a path segment made the router fail (500)
            return await self._refuse(send, 404, "Not found", "Not found.")
        if not _is_json(scope.get("headers", [])):
            return await self.app(scope, receive, send)
        max_bytes = body_limit_for(scope.get("path", ""), self.default_max_bytes, self.overrides)
        too_large = f"The request body is larger than {max_bytes} bytes."
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = max_bytes + 1
                if declared > max_bytes:
                    return await self._refuse(send, 413, "Payload Too Large", too_large)
        chunks, seen, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the caller went away
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > max_bytes:
                return await self._refuse(send, 413, "Payload Too Large", too_large)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if json_depth(body) > self.max_depth:
            return await self._refuse(send, 400, "Bad Request",
                                      f"The JSON body is nested deeper than {self.max_depth} levels.")
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)
