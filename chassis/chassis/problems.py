"""One error shape for every service: ``application/problem+json``.

Domain code raises the exceptions below; ``install_error_handlers`` maps them
(and everything connexion or starlette raises) to problem documents. A stack
trace never leaves the process.
"""

from __future__ import annotations

import logging

from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://family-story.example/problems/"


class DomainError(Exception):
    """Base of every error a service means to show a caller."""

    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(self, detail: str = ""):
        super().__init__(detail or self.title)
        self.detail = detail or self.title


class InvalidInput(DomainError):
    status, title, slug = 400, "Invalid input", "invalid-input"


class Unauthenticated(DomainError):
    status, title, slug = 401, "Not signed in", "unauthenticated"


class Forbidden(DomainError):
    status, title, slug = 403, "Not allowed", "forbidden"


class NotFound(DomainError):
    """Also what a caller gets for something that exists but is not theirs to see."""

    status, title, slug = 404, "Not found", "not-found"


class Conflict(DomainError):
    status, title, slug = 409, "Conflict", "conflict"


class PayloadTooLarge(DomainError):
    status, title, slug = 413, "Payload too large", "payload-too-large"


class Unprocessable(DomainError):
    status, title, slug = 422, "Cannot be done", "unprocessable"


class ServiceUnavailable(DomainError):
    status, title, slug = 503, "Temporarily unavailable", "unavailable"


_TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Cannot be done",
    500: "Internal error",
    502: "Bad gateway",
    503: "Temporarily unavailable",
    504: "Gateway timeout",
}


def problem_body(status: int, detail: str, title: str | None = None, slug: str | None = None) -> dict:
    title = title or _TITLES.get(status, "Error")
    return {
        "type": PROBLEM_BASE + (slug or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail or title,
    }


def problem_response(status: int, detail: str, title: str | None = None, slug: str | None = None,
                     headers: dict | None = None) -> ConnexionResponse:
    import json

    return ConnexionResponse(
        status_code=status,
        content_type=PROBLEM_JSON,
        body=json.dumps(problem_body(status, detail, title, slug)),
        headers=headers or {},
    )


def _domain_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, DomainError)
    return problem_response(exc.status, exc.detail, exc.title, exc.slug)


def _connexion_problem(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, ProblemException)
    status = exc.status or 500
    detail = str(exc.detail or exc.title or "")
    if status >= 500:
        # connexion puts validator internals in 500 details; keep them in the log only.
        log.error("contract problem status=%s title=%s", status, exc.title)
        detail = _TITLES.get(status, "Error")
    headers = dict(exc.headers or {})
    return problem_response(status, detail, exc.title if status < 500 else None, headers=headers)


def _http_exception(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem_response(exc.status_code, str(exc.detail or ""), headers=dict(exc.headers or {}))


def _unexpected(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, "Something went wrong on our side; nothing was changed by it.")


def _not_utf8(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    # connexion decodes JSON bodies without catching UnicodeDecodeError: that is bad input, not a 500
    return problem_response(400, "The request body is not valid UTF-8 JSON.")


def install_error_handlers(app) -> None:
    """Route every error of a connexion app to a problem document."""
    app.add_error_handler(DomainError, _domain_error)
    app.add_error_handler(UnicodeDecodeError, _not_utf8)
    app.add_error_handler(ProblemException, _connexion_problem)
    app.add_error_handler(StarletteHTTPException, _http_exception)
    for status in (400, 401, 403, 404, 405, 406, 413, 415):
        app.add_error_handler(status, lambda req, exc, s=status: problem_response(s, str(getattr(exc, "detail", "") or "")))
    app.add_error_handler(Exception, _unexpected)
