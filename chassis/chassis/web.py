"""The app factory every service uses: a connexion 3 app bound to its contract.

``create_service_app`` wires, in one place: strict request validation,
response validation (on in tests), problem+json for every error, the body
size limit, the JSON depth limit (``chassis.jsonguard``), internal-token verification (the
contract's ``x-bearerInfoFunc`` points at ``chassis.web.bearer_info``) and the service's resources.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import connexion
from connexion import context as connexion_context
from connexion.middleware import MiddlewarePosition
from flask import current_app

from .config import Settings
from .identity import Identity
from .jsonguard import JsonGuardMiddleware, body_limit_for
from .problems import PayloadTooLarge, Unauthenticated, install_error_handlers
from .tokens import InvalidToken, TokenVerifier

log = logging.getLogger(__name__)

CONTRACTS_DIR = Path(__file__).resolve().parents[2] / "contracts"

# The verifier is built by create_service_app (the composition root), not at
# import; connexion's security layer calls bearer_info with the token only.
_verifier: TokenVerifier | None = None


def bearer_info(token: str) -> dict | None:
    """connexion ``x-bearerInfoFunc``: a verified internal token's claims, or None (401)."""
    if _verifier is None:
        log.error("no token verifier configured")
        return None
    try:
        claims = _verifier.verify(token)
    except InvalidToken as exc:
        log.info("internal token refused: %s", exc)
        return None
    return {"sub": claims["sub"], "claims": claims}


def caller() -> Identity:
    """The verified identity of the current request."""
    info = connexion_context.context.get("token_info")
    if not info:
        raise Unauthenticated("A valid internal token is required.")
    return Identity.from_claims(info["claims"])


def resource(name: str) -> Any:
    """A resource (store, audit trail, …) given to create_service_app."""
    return current_app.extensions["family_story"][name]


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_bytes`` with 413, declared or streamed."""

    def __init__(self, app, max_bytes: int, overrides: dict[str, int] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.overrides = overrides or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit_for(scope.get("path", ""), self.max_bytes, self.overrides)
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
            return message

        return await self.app(scope, limited_receive, send)


def create_service_app(
    settings: Settings,
    contract: str,
    resources: dict[str, Any],
    verifier: TokenVerifier | None = None,
    lifespan=None,
    body_limit_overrides: dict[str, int] | None = None,
) -> connexion.FlaskApp:
    """A connexion FlaskApp serving ``contracts/<contract>`` for one service."""
    global _verifier
    _verifier = verifier or TokenVerifier(
        settings.internal_jwks, audience=settings.service_name, issuer=settings.internal_token_issuer
    )
    app = connexion.FlaskApp(settings.service_name, specification_dir=str(CONTRACTS_DIR), lifespan=lifespan)
    app.add_api(
        contract,
        strict_validation=True,
        validate_responses=settings.validate_responses,
        swagger_ui_options=None,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        position=MiddlewarePosition.BEFORE_SECURITY,
        max_bytes=settings.max_body_bytes,
        overrides=body_limit_overrides,
    )
    app.add_middleware(
        JsonGuardMiddleware,
        position=MiddlewarePosition.BEFORE_SECURITY,
        max_bytes=settings.max_body_bytes,
        overrides=body_limit_overrides,
    )
    install_error_handlers(app)
    app.app.extensions["family_story"] = {"settings": settings, **resources}
    app.app.json.sort_keys = False
    return app
