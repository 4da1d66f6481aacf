"""Sign-in building blocks without servers: password policy, TOTP, rate limiter, CSRF, sessions of a person."""

from __future__ import annotations

import asyncio

import pyotp
import pytest
from gateway_fakes import Clock, MemorySessionStore, make_person

from chassis.problems import Unprocessable
from gateway import csrf, totp
from gateway.passwords import Passwords, check_policy, policy_problem
from gateway.ratelimit import Limit, Limiter
from gateway.sessions import Sessions
from gateway.signin_store import MemorySignInStore


def run(coro):
    return asyncio.run(coro)


class TestPasswordPolicy:
    @pytest.mark.parametrize("password", ["short", "elevenchars", "password1234", "Password1234!", "qwertyuiop123",
                                          "aaaaaaaaaaaaaaaa", "abababababababab", "iloveyou2024"])
    def test_short_common_or_repetitive_passwords_are_refused(self, password):
        assert policy_problem(password) is not None
        with pytest.raises(Unprocessable):
            check_policy(password)

    def test_a_long_uncommon_password_is_accepted(self):
        assert policy_problem("amber-kettle-orbit-42") is None

    def test_the_login_inside_the_password_is_refused(self):
        assert policy_problem("sam.parent@x.example-2025", login="sam.parent@x.example") is not None

    def test_argon2id_hash_verifies_and_unknown_accounts_still_cost_a_verification(self):
        passwords = Passwords()
        stored = passwords.hash("amber-kettle-orbit-42")
        assert stored.startswith("$argon2id$")
        assert passwords.verify(stored, "amber-kettle-orbit-42")
        assert not passwords.verify(stored, "amber-kettle-orbit-43")
        assert not passwords.verify(None, "not a password anyone has: " + "x" * 20)  # the dummy never signs in


class TestTotp:
    def test_current_code_matches_once_and_never_again(self):
        secret = totp.new_secret()
        now = 1_700_000_000.0
        code = pyotp.TOTP(secret).at(now)
        step = totp.matching_step(secret, code, None, clock=lambda: now)
        assert step == int(now // 30)
        assert totp.matching_step(secret, code, step, clock=lambda: now) is None

    def test_one_step_of_drift_is_allowed_two_are_not(self):
        secret = totp.new_secret()
        now = 1_700_000_000.0
        assert totp.matching_step(secret, pyotp.TOTP(secret).at(now - 30), None, clock=lambda: now) is not None
        assert totp.matching_step(secret, pyotp.TOTP(secret).at(now - 90), None, clock=lambda: now) is None

    @pytest.mark.parametrize("code", ["", "12345", "abcdef", "1234567"])
    def test_malformed_codes_never_match(self, code):
        assert totp.matching_step(totp.new_secret(), code, None) is None

    def test_provisioning_uri_names_the_issuer(self):
        assert totp.provisioning_uri(totp.new_secret(), "sam@x.example").startswith("otpauth://totp/Family%20Story")


class TestLimiter:
    def limiter(self, clock):
        return Limiter(MemorySignInStore(), {"login": Limit(3, quiet_after=600, base_lock=30, max_lock=120),
                                             "ip": Limit(10, quiet_after=600, base_lock=30, max_lock=120)}, clock)

    def test_locks_after_the_limit_with_doubling_backoff(self):
        clock = Clock()
        limiter = self.limiter(clock)
        keys = limiter.keys("sign-in", "Sam@X.example", "10.0.0.1")
        for _ in range(2):
            run(limiter.failed(keys))
        assert run(limiter.retry_after(keys)) == 0
        run(limiter.failed(keys))
        assert run(limiter.retry_after(keys)) == 30
        clock.advance(31)
        run(limiter.failed(keys))
        assert run(limiter.retry_after(keys)) == 60
        clock.advance(61)
        for _ in range(3):
            run(limiter.failed(keys))
        assert run(limiter.retry_after(keys)) == 120  # capped

    def test_unknown_and_known_logins_are_the_same_key_kind(self):
        limiter = self.limiter(Clock())
        assert limiter.keys("sign-in", " Sam@X.example ", None) == [("login", "sign-in:login:sam@x.example")]

    def test_success_forgets_the_login_not_the_address(self):
        clock = Clock()
        limiter = self.limiter(clock)
        keys = limiter.keys("sign-in", "sam", "10.0.0.1")
        for _ in range(2):
            run(limiter.failed(keys))
        run(limiter.succeeded(keys))
        assert run(limiter.store.throttle("sign-in:login:sam")) is None
        assert run(limiter.store.throttle("sign-in:ip:10.0.0.1")).failures == 2

    def test_failures_are_forgotten_after_a_quiet_period(self):
        clock = Clock()
        limiter = self.limiter(clock)
        keys = limiter.keys("sign-in", "sam", None)
        for _ in range(2):
            run(limiter.failed(keys))
        clock.advance(601)
        run(limiter.failed(keys))
        assert run(limiter.retry_after(keys)) == 0

    def test_many_logins_from_one_address_lock_the_address(self):
        limiter = self.limiter(Clock())
        for n in range(10):
            run(limiter.failed(limiter.keys("sign-in", f"user{n}", "10.0.0.9")))
        assert run(limiter.retry_after(limiter.keys("sign-in", "fresh-login", "10.0.0.9"))) == 30


def scope(method="GET", path="/api/me", headers=()):
    return {"type": "http", "method": method, "path": path, "headers": [(b"host", b"gw.example"), *headers]}


class TestCsrf:
    COOKIES = (b"cookie", b"fs_session=tok123; fs_csrf=abc")

    def test_cookie_authenticates_safe_requests(self):
        out, refused = csrf.authenticate_cookie(scope(headers=[self.COOKIES]))
        assert not refused and (b"authorization", b"Bearer tok123") in out["headers"]

    def test_unsafe_request_without_the_header_is_refused(self):
        out, refused = csrf.authenticate_cookie(scope("POST", "/api/invitations", [self.COOKIES]))
        assert refused and not any(k == b"authorization" for k, _ in out["headers"])

    def test_unsafe_request_with_a_wrong_header_is_refused(self):
        _, refused = csrf.authenticate_cookie(scope("DELETE", "/api/session", [self.COOKIES,
                                                                               (b"x-csrf-token", b"abd")]))
        assert refused

    def test_unsafe_request_with_the_matching_header_is_authenticated(self):
        out, refused = csrf.authenticate_cookie(scope("DELETE", "/api/session", [self.COOKIES,
                                                                                 (b"x-csrf-token", b"abc")]))
        assert not refused and (b"authorization", b"Bearer tok123") in out["headers"]

    def test_cross_origin_unsafe_request_is_refused_even_with_the_header(self):
        _, refused = csrf.authenticate_cookie(scope("POST", "/api/me/totp", [
            self.COOKIES, (b"x-csrf-token", b"abc"), (b"origin", b"https://evil.example")]))
        assert refused

    def test_a_bearer_token_needs_no_csrf_token(self):
        headers = [self.COOKIES, (b"authorization", b"Bearer other")]
        out, refused = csrf.authenticate_cookie(scope("POST", "/api/invitations", headers))
        assert not refused and out["headers"] == scope("POST", "/api/invitations", headers)["headers"]

    def test_public_sign_in_is_not_blocked_by_a_stale_cookie(self):
        out, refused = csrf.authenticate_cookie(scope("POST", "/api/session", [self.COOKIES]))
        assert not refused and not any(k == b"authorization" for k, _ in out["headers"])

    def test_cookies_are_httponly_samesite_and_secure_outside_development(self):
        session, token = csrf.session_cookies("t", "c", 60, secure=True)
        assert b"HttpOnly" in session[1] and b"SameSite=Lax" in session[1] and b"Secure" in session[1]
        assert b"HttpOnly" not in token[1] and b"Secure" in token[1]
        assert b"Secure" not in csrf.session_cookies("t", "c", 60, secure=False)[0][1]


class TestRevokePerson:
    def test_every_session_of_the_person_ends_even_when_cached(self):
        store = MemorySessionStore()
        told = []

        async def tell(council, person):
            told.append((council, person))

        sessions = Sessions(store, 3600, 60, on_revoke_person=tell)
        sam, other = make_person(), make_person(person_id="p-other", login="other")

        async def scenario():
            tokens = [(await sessions.open(sam))[0] for _ in range(2)]
            kept = (await sessions.open(other))[0]
            for token in [*tokens, kept]:
                assert await sessions.principal(token, use_cache=True) is not None
            await sessions.revoke_person(sam.council_id, sam.person_id)
            assert [await sessions.principal(t, use_cache=True) for t in tokens] == [None, None]
            assert await sessions.principal(kept, use_cache=True) == other

        run(scenario())
        assert told == [(sam.council_id, sam.person_id)]
