"""``GET /health``: the operation every contract declares (``chassis.health.check``)."""

from __future__ import annotations

from .mongo import ping
from .problems import problem_response
from .web import resource


def check():
    """200 when the service can reach its own database, 503 otherwise."""
    db = resource("db")
    if not ping(db):
        return problem_response(503, "The service cannot reach its database.")
    settings = resource("settings")
    # explicit content type: contracts declare both JSON and problem+json answers
    return {"status": "ok", "service": settings.service_name}, 200, {"Content-Type": "application/json"}
