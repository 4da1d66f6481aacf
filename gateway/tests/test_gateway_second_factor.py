"""The second factor a council can require of its staff after an OIDC sign-in, without servers: the pending
state (taken once, expires, bound to the person), enrolment, codes never accepted twice, wrong codes counted
by the limiter."""

from __future__ import annotations

import asyncio

import pyotp
import pytest
from gateway_fakes import Clock

from chassis.problems import Conflict
from gateway.ratelimit import Limit, Limiter
from gateway.signin import SECOND_FACTOR_SECONDS, Locked, SignIn, SignInRefused, WrongCode, principal_of
from gateway.signin_store import Account, MemorySignInStore


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def world():
    clock = Clock()
    store = MemorySignInStore()
    limiter = Limiter(store, {"login": Limit(3, quiet_after=600, base_lock=30, max_lock=120),
                              "ip": Limit(100, quiet_after=600, base_lock=30, max_lock=120)}, clock)
    signin = SignIn(store, sessions=None, access=None, catalogue=None, notifier=None, limiter=limiter,
                    passwords=None, demo=None, clock=clock)
    staff = Account("council-b", "sid", login="sid@council-b.example", display_name="Sid", kind="staff",
                    roles=["social_worker"])
    run(store.save_account(staff))
    return signin, store, clock, principal_of(staff)


def enrol(signin, clock, principal):
    token = run(signin.begin_second_factor(principal))
    secret, uri = run(signin.second_factor_enrol(token))
    assert uri.startswith("otpauth://totp/")
    assert run(signin.second_factor_confirm(token, pyotp.TOTP(secret).at(clock()), "10.0.0.1")).person_id == "sid"
    return secret


class TestPendingState:
    def test_kept_only_as_a_digest_and_bound_to_the_person(self, world):
        signin, store, _clock, principal = world
        token = run(signin.begin_second_factor(principal))
        assert token not in store.one_time
        [(_digest, doc)] = store.one_time.items()
        assert doc["purpose"] == "second_factor" and doc["data"]["person_id"] == "sid"
        assert run(signin.pending_second_factor(token)).person_id == "sid"
        assert run(signin.pending_second_factor("not-the-token")) is None

    def test_expires(self, world):
        signin, _store, clock, principal = world
        token = run(signin.begin_second_factor(principal))
        clock.advance(SECOND_FACTOR_SECONDS + 1)
        assert run(signin.pending_second_factor(token)) is None
        with pytest.raises(SignInRefused):
            run(signin.second_factor_enrol(token))

    def test_a_newer_sign_in_replaces_the_older_pending_state(self, world):
        signin, _store, _clock, principal = world
        older = run(signin.begin_second_factor(principal))
        run(signin.begin_second_factor(principal))
        assert run(signin.pending_second_factor(older)) is None

    def test_a_disabled_person_cannot_continue(self, world):
        signin, store, _clock, principal = world
        token = run(signin.begin_second_factor(principal))
        account = run(store.account("council-b", "sid"))
        account.disabled = True
        run(store.save_account(account))
        assert run(signin.pending_second_factor(token)) is None


class TestEnrolAndConfirm:
    def test_enrol_then_sign_in_takes_the_pending_state_once(self, world):
        signin, store, clock, principal = world
        token = run(signin.begin_second_factor(principal))
        with pytest.raises(Conflict):  # nothing to confirm yet
            run(signin.second_factor_confirm(token, "123456", None))
        secret, _uri = run(signin.second_factor_enrol(token))
        code = pyotp.TOTP(secret).at(clock())
        assert run(signin.second_factor_confirm(token, code, None)).person_id == "sid"
        assert run(store.account("council-b", "sid")).totp_enabled
        with pytest.raises(SignInRefused):  # single use
            run(signin.second_factor_confirm(token, pyotp.TOTP(secret).at(clock() + 30), None))

    def test_enrolled_person_cannot_enrol_again(self, world):
        signin, _store, clock, principal = world
        enrol(signin, clock, principal)
        with pytest.raises(Conflict):
            run(signin.second_factor_enrol(run(signin.begin_second_factor(principal))))

    def test_a_used_step_is_never_accepted_again_and_a_wrong_code_keeps_the_state(self, world):
        signin, _store, clock, principal = world
        secret = enrol(signin, clock, principal)
        token = run(signin.begin_second_factor(principal))
        with pytest.raises(WrongCode):  # the enrolment's code
            run(signin.second_factor_confirm(token, pyotp.TOTP(secret).at(clock()), None))
        nxt = pyotp.TOTP(secret).at(clock() + 30)
        assert run(signin.second_factor_confirm(token, nxt, None)).person_id == "sid"
        again = run(signin.begin_second_factor(principal))
        with pytest.raises(WrongCode):
            run(signin.second_factor_confirm(again, nxt, None))

    def test_wrong_codes_lock_the_login_out(self, world):
        signin, _store, clock, principal = world
        secret = enrol(signin, clock, principal)
        token = run(signin.begin_second_factor(principal))
        for _ in range(3):
            with pytest.raises(WrongCode):
                run(signin.second_factor_confirm(token, "000000", "10.0.0.9"))
        with pytest.raises(Locked):  # even the right code waits
            run(signin.second_factor_confirm(token, pyotp.TOTP(secret).at(clock() + 30), "10.0.0.9"))
        clock.advance(31)
        assert run(signin.second_factor_confirm(token, pyotp.TOTP(secret).at(clock()), "10.0.0.9"))
