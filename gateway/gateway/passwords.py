"""Passwords: the policy a new one must meet, and argon2id hashing.

Policy: at least ``MIN_LENGTH`` characters (at most ``MAX_LENGTH``), not one of
the common passwords shipped in ``data/common-passwords.txt`` (compared lower
case, also with a trailing run of digits and symbols removed), not one repeated
character, and not the login itself.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from chassis.problems import Unprocessable

MIN_LENGTH = 12
MAX_LENGTH = 256
COMMON_FILE = Path(__file__).resolve().parent / "data" / "common-passwords.txt"
_TRAILER = re.compile(r"[\d\W_]+$")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = COMMON_FILE.read_text().splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def policy_problem(password: str, login: str = "") -> str | None:
    """Why a new password is not acceptable, in plain English, or None when it is."""
    if len(password) < MIN_LENGTH:
        return f"Choose a password of at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Choose a password of at most {MAX_LENGTH} characters."
    lowered = password.lower()
    stem = _TRAILER.sub("", lowered)
    common = common_passwords()
    if lowered in common or (stem and stem in common) or len(set(lowered)) <= 2:
        return "That password is too common; choose one that is harder to guess."
    if login and login.lower() in lowered:
        return "Choose a password that does not contain your sign-in name."
    return None


def check_policy(password: str, login: str = "") -> None:
    problem = policy_problem(password, login)
    if problem:
        raise Unprocessable(problem)


class Passwords:
    """argon2id hashing (argon2-cffi's defaults: RFC 9106 low-memory profile)."""

    def __init__(self, hasher: PasswordHasher | None = None):
        self.hasher = hasher or PasswordHasher()
        # verified against when there is no account (or no password): unknown logins cost the same time
        self._dummy = self.hasher.hash("not a password anyone has: " + "x" * 20)

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; always does one argon2 verification, even with no hash."""
        try:
            return self.hasher.verify(stored_hash or self._dummy, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)
