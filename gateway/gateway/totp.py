"""TOTP second factor (RFC 6238, pyotp): enrolment secrets and verification without replay."""

from __future__ import annotations

import time
from collections.abc import Callable

import pyotp

ISSUER = "Family Story"
STEP = 30
VALID_WINDOW = 1  # one step either side: clocks drift


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, login: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=login, issuer_name=ISSUER)


def matching_step(secret: str, code: str, last_step: int | None, clock: Callable[[], float] = time.time) -> int | None:
    """The time step ``code`` is valid for, or None. A step at or before ``last_step`` (already used) never
    matches again, so an observed code cannot be replayed."""
    code = (code or "").strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = clock()
    current = int(now // STEP)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if last_step is not None and step <= last_step:
            continue
        if pyotp.utils.strings_equal(totp.at(step * STEP), code):
            return step
    return None
