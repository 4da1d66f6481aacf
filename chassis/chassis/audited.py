"""Run a domain operation and write its one audit record, whatever the outcome (no I/O of its own:
the trail is whatever ``record``-able object the service's domain was given)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .identity import Identity
from .problems import DomainError

T = TypeVar("T")


def audited(audit: Any, who: Identity, action: str, case_id: str | None, record_id: str | None,
            fn: Callable[[], T], id_field: str) -> T:
    """``fn()``, audited: a refusal is recorded with its problem slug as the outcome; on success a
    record made by ``fn`` (the first item when it returns a tuple) names itself by ``id_field``."""
    try:
        result = fn()
    except DomainError as exc:
        audit.record(who, action, case_id=case_id, record_id=record_id, outcome=exc.slug)
        raise
    made = result[0] if isinstance(result, tuple) else result
    if record_id is None and isinstance(made, dict):
        record_id = made.get(id_field)
    audit.record(who, action, case_id=case_id, record_id=record_id)
    return result
