"""Handlers of the gateway's own operations (contracts/gateway.yaml); the proxy paths live in proxy.py."""

from __future__ import annotations

from connexion import context as ctx

from chassis.problems import (
    NotFound,
    ServiceUnavailable,
    Unauthenticated,
    problem_response,
)

from .directory import UpstreamError
from .identity import Principal

SIGN_IN_REFUSED = "That sign-in was not accepted."


def _gateway():
    from .app import SCOPE_KEY

    return ctx.scope[SCOPE_KEY]


async def session_info(token: str, request=None) -> dict | None:
    """connexion ``x-bearerInfoFunc``: the principal of a live session token, or None (401)."""
    from .app import SCOPE_KEY

    gateway = request.scope[SCOPE_KEY] if request is not None else _gateway()
    principal = await gateway.sessions.principal(token)
    if principal is None:
        return None
    return {"sub": principal.person_id, "principal": principal, "session_token": token}


_JSON = {"Content-Type": "application/json"}


def _principal() -> Principal:
    info = ctx.context.get("token_info")
    if not info:
        raise Unauthenticated("Sign in to use this.")
    return info["principal"]


def _person(principal: Principal) -> dict:
    return {"person_id": principal.person_id, "council_id": principal.council_id,
            "display_name": principal.display_name, "kind": principal.kind, "roles": list(principal.roles)}


async def health():
    gateway = _gateway()
    if not await gateway.sessions.store.ping():
        return problem_response(503, "The gateway cannot reach its session store.")
    return {"status": "ok", "service": gateway.settings.service_name}, 200, _JSON


async def jwks():
    return _gateway().minter.jwks(), 200, _JSON


async def demo_people():
    provider = _gateway().identity_provider
    if provider is None or not provider.directory():
        raise NotFound("There is no demo sign-in here.")
    people = sorted(provider.directory(), key=lambda p: (p.council_id or "", p.kind, p.display_name))
    return {"items": [{"login": p.login, "display_name": p.display_name, "kind": p.kind,
                       "council_id": p.council_id} for p in people]}, 200, _JSON


async def get_me():
    principal = _principal()
    try:
        cases = await _gateway().access.memberships(principal)
    except UpstreamError as exc:
        raise ServiceUnavailable("Your cases cannot be looked up right now; try again in a moment.") from exc
    return {**_person(principal), "audience": principal.audience,
            "cases": [{"case_id": case_id, "role": role} for case_id, role in sorted(cases.items())]}, 200, _JSON


async def list_tools():
    principal = _principal()
    try:
        tools = await _gateway().access.tools_for(principal)
    except UpstreamError as exc:
        raise ServiceUnavailable("Your tools cannot be looked up right now; try again in a moment.") from exc
    return {"items": [tool.listing() for tool in tools]}, 200, _JSON


async def _proxied(**_ignored):
    """Never reached: the proxy paths are served by gateway.proxy in front of connexion."""
    raise NotFound("Not found.")


for _target in ("tool", "catalogue", "cases"):
    for _method in ("get", "post", "put", "patch", "delete"):
        globals()[f"proxied_{_target}_{_method}"] = _proxied
