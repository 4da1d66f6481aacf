"""Sign-in: every way in, and the account rules, in one place (no HTTP here; see signin_api.py).

Ways in, each giving a ``Principal`` for a session:

- password (+ TOTP once enrolled, or when the council requires it of its staff): ``PasswordIdentityProvider``
- OpenID Connect (staff): ``oidc.OidcRelyingParty`` + an account the council admin registered for the e-mail;
  when the council requires TOTP of its staff, the callback gives only a pending second-factor state (a
  one-time secret, sha256 stored, ``SECOND_FACTOR_SECONDS``) that can do nothing but enrol TOTP and/or
  confirm a code (``second_factor_*``), which then gives the session
- invitation code (families, young people): sets the password, then as above
- client credentials (machines): ``MachineClients``
- the demo provider (login alone; never in production)

Every refusal of a credential answers the same (``SignInRefused``), whether
the login exists or not, after the same work (one argon2 verification).
Failures are counted per login and per client IP (``ratelimit.Limiter``);
a locked key answers ``Locked`` before any credential is checked.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chassis.identity import FAMILY_CASE_ROLES, STAFF_CASE_ROLES
from chassis.problems import Conflict, Forbidden, InvalidInput, NotFound, Unprocessable

from . import totp
from .identity import IdentityProvider, Principal
from .notify import Notifier
from .passwords import Passwords, check_policy
from .ratelimit import Limiter
from .signin_store import Account, LoginTaken, SignInStore

log = logging.getLogger(__name__)

INVITE_SECONDS = 7 * 86400
RESET_SECONDS = 3600
SECOND_FACTOR_SECONDS = 300
SECOND_FACTOR = "second_factor"  # one_time purpose of a pending second-factor state
PLATFORM_SCOPES = ("cases:read", "cases:write")
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I


class SignInRefused(Exception):
    """Not accepted; the same answer whatever the reason."""


class WrongCode(Exception):
    """A second-factor code that is not right (or already used); counted by the limiter."""


class Locked(Exception):
    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_code() -> str:
    """A one-time code a person can type: 15 characters (75 bits) in groups of five."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(15))
    return "-".join(raw[i:i + 5] for i in range(0, 15, 5))


def normalise_code(code: str) -> str:
    raw = "".join(ch for ch in code.upper() if ch.isalnum())
    return "-".join(raw[i:i + 5] for i in range(0, len(raw), 5))


def normalise_login(login: str) -> str:
    return login.strip().lower()


def kind_for_case_role(role: str) -> str:
    return "young_person" if role in ("child", "young_person") else "family"


def principal_of(account: Account) -> Principal:
    return Principal(person_id=account.person_id, council_id=account.council_id,
                     display_name=account.display_name or account.person_id, kind=account.kind,
                     roles=tuple(sorted(account.roles)), login=account.login or "")


def is_admin_of(principal: Principal, council_id: str | None) -> bool:
    return (council_id is not None and principal.council_id == council_id and not principal.is_machine
            and "council_admin" in principal.roles)


@dataclass(frozen=True)
class Attempt:
    """Who is trying, for the limiter: the login as typed and the client IP."""

    login: str | None
    ip: str | None


class PasswordIdentityProvider(IdentityProvider):
    """Login + password (+ TOTP): accounts in the gateway's MongoDB, argon2id hashes."""

    name = "password"

    def __init__(self, store: SignInStore, passwords: Passwords, staff_totp_required: Callable,
                 clock: Callable[[], float] = time.time):
        self.store = store
        self.passwords = passwords
        self.staff_totp_required = staff_totp_required  # async (council_id) -> bool
        self.clock = clock

    async def authenticate(self, credentials: dict[str, Any]) -> Principal | None:
        login = normalise_login(str(credentials.get("login") or ""))
        password = str(credentials.get("password") or "")
        account = await self.store.account_by_login(login) if login else None
        # always one argon2 verification: an unknown login takes as long as a wrong password
        if not self.passwords.verify(account.password_hash if account else None, password):
            return None
        if account is None or account.disabled:
            return None
        code = credentials.get("totp_code")
        if account.totp_enabled:
            step = totp.matching_step(account.totp_secret or "", str(code or ""), account.totp_last_step, self.clock)
            if step is None:
                return None
            account.totp_last_step = step
            await self.store.save_account(account)
        elif account.kind == "staff" and await self.staff_totp_required(account.council_id):
            return None
        return principal_of(account)


class SignIn:
    """The account rules and the flows; HTTP lives in signin_api.py."""

    def __init__(self, store: SignInStore, sessions, access, catalogue, notifier: Notifier, limiter: Limiter,
                 passwords: Passwords, demo: IdentityProvider | None, machine_token_seconds: int = 3600,
                 clock: Callable[[], float] = time.time, on_person_disabled=None):
        self.store = store
        self.sessions = sessions
        self.access = access
        self.catalogue = catalogue
        self.notifier = notifier
        self.limiter = limiter
        self.passwords = passwords
        self.demo = demo
        self.machine_token_seconds = machine_token_seconds
        self.clock = clock
        self.on_person_disabled = on_person_disabled
        self.password_provider = PasswordIdentityProvider(store, passwords, self.staff_totp_required, clock)

    async def staff_totp_required(self, council_id: str) -> bool:
        settings = await self.catalogue.sign_in_settings(council_id)
        return bool(settings.get("staff_totp_required"))

    # --- the limiter around a credential check -----------------------------------------------
    async def _guarded(self, purpose: str, attempt: Attempt, check):
        keys = self.limiter.keys(purpose, attempt.login, attempt.ip)
        wait = await self.limiter.retry_after(keys)
        if wait:
            raise Locked(wait)
        result = await check()
        if result is None:
            await self.limiter.failed(keys)
            raise SignInRefused()
        await self.limiter.succeeded(keys)
        return result

    async def _not_disabled(self, principal: Principal | None) -> Principal | None:
        if principal is None or principal.council_id is None:
            return principal
        account = await self.store.account(principal.council_id, principal.person_id)
        return None if account is not None and account.disabled else principal

    # --- password and demo -----------------------------------------------------------------------
    async def with_password(self, credentials: dict[str, Any], ip: str | None) -> Principal:
        attempt = Attempt(str(credentials.get("login") or ""), ip)
        return await self._guarded("sign-in", attempt, lambda: self.password_provider.authenticate(credentials))

    async def with_demo(self, credentials: dict[str, Any], ip: str | None) -> Principal:
        if self.demo is None:
            raise SignInRefused()

        async def check():
            return await self._not_disabled(await self.demo.authenticate(credentials))

        return await self._guarded("sign-in", Attempt(str(credentials.get("login") or ""), ip), check)

    async def with_oidc_claims(self, council_id: str, claims: dict[str, Any]) -> Principal:
        """The staff account registered for the verified e-mail, in the council the flow started for."""
        account = await self.store.account_by_login(normalise_login(str(claims["email"])))
        if account is None or account.council_id != council_id or account.kind != "staff" or account.disabled:
            raise SignInRefused()
        return principal_of(account)

    # --- the second factor after an OIDC sign-in (council requires TOTP of its staff) ------------
    async def begin_second_factor(self, principal: Principal) -> str:
        """A pending second-factor state for the person (replacing an older one): the opaque token."""
        token = secrets.token_urlsafe(32)
        key = f"{principal.council_id}/{principal.person_id}"
        await self.store.drop_one_time(SECOND_FACTOR, key)
        await self.store.put_one_time(digest(token), SECOND_FACTOR, {
            "key": key, "council_id": principal.council_id, "person_id": principal.person_id},
            self.clock() + SECOND_FACTOR_SECONDS)
        return token

    async def pending_second_factor(self, token: str) -> Account | None:
        """The staff account a live pending state belongs to (still enabled), or None."""
        if not token or len(token) > 200:
            return None
        data = await self.store.peek_one_time(digest(token), SECOND_FACTOR, self.clock())
        if data is None:
            return None
        account = await self.store.account(data["council_id"], data["person_id"])
        if account is None or account.disabled or account.kind != "staff":
            return None
        return account

    async def second_factor_enrol(self, token: str) -> tuple[str, str]:
        """A new TOTP secret for a staff member who has none switched on yet (confirmed by a code)."""
        account = await self.pending_second_factor(token)
        if account is None:
            raise SignInRefused()
        if account.totp_enabled:
            raise Conflict("A second factor is already set up: enter a code from it.")
        account.totp_secret = totp.new_secret()
        await self.store.save_account(account)
        return account.totp_secret, totp.provisioning_uri(account.totp_secret, account.login or account.person_id)

    async def second_factor_confirm(self, token: str, code: str, ip: str | None) -> Principal:
        """A code of the enrolled (or just enrolling) authenticator: the pending state is taken (once) and
        the person may have a session. A wrong or already used code counts as a failed sign-in."""
        account = await self.pending_second_factor(token)
        if account is None:
            raise SignInRefused()
        keys = self.limiter.keys("sign-in", account.login or account.person_id, ip)
        wait = await self.limiter.retry_after(keys)
        if wait:
            raise Locked(wait)
        if not account.totp_secret:
            raise Conflict("Set up a second factor first.")
        last = account.totp_last_step if account.totp_enabled else None
        step = totp.matching_step(account.totp_secret, code, last, self.clock)
        if step is None:
            await self.limiter.failed(keys)
            raise WrongCode()
        if await self.store.take_one_time(digest(token), SECOND_FACTOR, self.clock()) is None:
            raise SignInRefused()  # another request used this pending state first
        account.totp_enabled, account.totp_last_step = True, step
        await self.store.save_account(account)
        await self.limiter.succeeded(keys)
        return principal_of(account)

    # --- invitations -------------------------------------------------------------------------------
    async def invite(self, inviter: Principal, case_id: str, person_id: str, send_to: str,
                     display_name: str) -> float:
        """A social worker (or manager) on the case invites a family-side member of it; the expiry."""
        council = inviter.council_id
        if council is None or inviter.is_machine:
            raise NotFound("No such case.")
        mine = await self.access.memberships(inviter)
        if mine.get(case_id) not in STAFF_CASE_ROLES:
            raise NotFound("No such case.")
        theirs = await self.access.cases.memberships(council, person_id)
        role = theirs.get(case_id)
        if role not in FAMILY_CASE_ROLES:
            raise Unprocessable("Only a family member or young person on this case can be invited to it.")
        account = await self.store.account(council, person_id)
        if account is not None and account.disabled:
            raise Conflict("This person's account is switched off; ask your council administrator.")
        code = normalise_code(new_code())
        expires = self.clock() + INVITE_SECONDS
        key = f"{council}/{person_id}"
        await self.store.drop_one_time("invitation", key)  # a new invitation replaces an older one
        await self.store.put_one_time(digest(code), "invitation", {
            "key": key, "council_id": council, "person_id": person_id, "kind": kind_for_case_role(role),
            "login": normalise_login(send_to), "display_name": display_name, "invited_by": inviter.person_id,
            "case_id": case_id}, expires)
        await self.notifier.send("invitation", send_to, {"code": code, "name": display_name})
        return expires

    async def accept(self, code: str, password: str, ip: str | None) -> Principal:
        """Take an invitation code once and set the password; signs the person in."""
        attempt = Attempt(None, ip)
        wait = await self.limiter.retry_after(self.limiter.keys("code", None, ip))
        if wait:
            raise Locked(wait)
        check_policy(password)  # first, so a weak password does not use the code up
        invitation = await self.store.take_one_time(digest(normalise_code(code)), "invitation", self.clock())
        if invitation is None:
            await self.limiter.failed(self.limiter.keys("code", attempt.login, ip))
            raise SignInRefused()
        account = await self.store.account(invitation["council_id"], invitation["person_id"])
        if account is not None and account.disabled:
            raise SignInRefused()
        account = account or Account(invitation["council_id"], invitation["person_id"])
        account.login = invitation["login"]
        account.display_name = invitation["display_name"] or account.display_name
        account.kind = invitation["kind"]
        account.password_hash = self.passwords.hash(password)
        try:
            await self.store.save_account(account)
        except LoginTaken as exc:
            raise Conflict("That e-mail address already signs in to another account.") from exc
        return principal_of(account)

    # --- password reset ----------------------------------------------------------------------------
    async def request_reset(self, login: str, ip: str | None) -> None:
        """Always the same answer; a code is sent only to an existing, enabled account with a password."""
        keys = self.limiter.keys("reset", login, ip)
        wait = await self.limiter.retry_after(keys)
        if wait:
            raise Locked(wait)
        await self.limiter.failed(keys)  # every request counts: a reset is not a thing to repeat
        account = await self.store.account_by_login(normalise_login(login))
        if account is None or account.disabled or not account.password_hash:
            return
        code = normalise_code(new_code())
        await self.store.drop_one_time("reset", account.key)
        await self.store.put_one_time(digest(code), "reset", {"key": account.key, "login": account.login},
                                      self.clock() + RESET_SECONDS)
        await self.notifier.send("password_reset", account.login or login, {"code": code,
                                                                            "name": account.display_name})

    async def complete_reset(self, login: str, code: str, password: str, ip: str | None) -> None:
        check_policy(password, login)

        async def check():
            data = await self.store.take_one_time(digest(normalise_code(code)), "reset", self.clock())
            if data is None or data["login"] != normalise_login(login):
                return None
            council, _, person = data["key"].partition("/")
            account = await self.store.account(council, person)
            if account is None or account.disabled:
                return None
            account.password_hash = self.passwords.hash(password)
            await self.store.save_account(account)
            return account

        account = await self._guarded("code", Attempt(login, ip), check)
        await self.sessions.revoke_person(account.council_id, account.person_id)

    # --- TOTP enrolment ----------------------------------------------------------------------------
    async def _own_account(self, principal: Principal) -> Account:
        account = await self.store.account(principal.council_id or "", principal.person_id)
        if account is None or not account.password_hash:
            raise NotFound("You sign in with your organisation's account; a second factor is set up there.")
        return account

    async def totp_begin(self, principal: Principal) -> tuple[str, str]:
        account = await self._own_account(principal)
        if account.totp_enabled:
            raise Conflict("A second factor is already set up.")
        account.totp_secret = totp.new_secret()
        await self.store.save_account(account)
        return account.totp_secret, totp.provisioning_uri(account.totp_secret, account.login or account.person_id)

    async def totp_confirm(self, principal: Principal, code: str) -> None:
        account = await self._own_account(principal)
        if account.totp_enabled or not account.totp_secret:
            raise Conflict("Start setting up a second factor first.")
        step = totp.matching_step(account.totp_secret, code, None, self.clock)
        if step is None:
            raise Unprocessable("That code is not right; check your authenticator app's clock and try again.")
        account.totp_enabled, account.totp_last_step = True, step
        await self.store.save_account(account)

    # --- council administration ----------------------------------------------------------------------
    async def register_staff(self, admin: Principal, person_id: str, login: str, display_name: str,
                             roles: list[str]) -> Account:
        """The council admin names the e-mail a staff member signs in with through the council's provider."""
        council = admin.council_id
        if not is_admin_of(admin, council):
            raise Forbidden("Only a council administrator may do this.")
        account = await self.store.account(council, person_id) or Account(council, person_id)
        if account.kind != "staff" and account.password_hash:
            raise Conflict("This person has a family account.")
        account.login, account.display_name, account.kind = normalise_login(login), display_name, "staff"
        account.roles = sorted(set(roles))
        try:
            await self.store.save_account(account)
        except LoginTaken as exc:
            raise Conflict("That e-mail address already signs in to another account.") from exc
        return account

    async def set_disabled(self, admin: Principal, person_id: str, disabled: bool) -> Account:
        """Switch a person of the admin's council off (their sessions stop at once, everywhere) or on."""
        council = admin.council_id
        if not is_admin_of(admin, council):
            raise Forbidden("Only a council administrator may do this.")
        if person_id == admin.person_id and disabled:
            raise Unprocessable("You cannot switch off your own account.")
        account = await self.store.account(council, person_id) or Account(council, person_id)
        account.disabled = disabled
        await self.store.save_account(account)
        if disabled:
            await self.sessions.revoke_person(council, person_id)
        return account

    # --- machines: OAuth2 client credentials ------------------------------------------------------------
    async def grantable_scopes(self, council_id: str) -> set[str]:
        tools = await self.access.enabled_tools(council_id)
        return set(PLATFORM_SCOPES) | {s for t in tools.values() for s in t.scopes}

    async def register_client(self, admin: Principal, name: str, scopes: list[str]) -> tuple[dict, str]:
        council = admin.council_id
        if not is_admin_of(admin, council):
            raise Forbidden("Only a council administrator may do this.")
        beyond = sorted(set(scopes) - await self.grantable_scopes(council))
        if beyond:
            raise Unprocessable(f"scopes: not granted to this council: {', '.join(beyond)}.")
        client_id = "mc-" + secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        doc = {"_id": client_id, "council_id": council, "name": name, "scopes": sorted(set(scopes)),
               # the secret is 256 random bits: a fast hash is enough (no dictionary to try)
               "secret_sha256": digest(secret), "created_by": admin.person_id, "created_at": self.clock()}
        await self.store.save_client(doc)
        return doc, secret

    async def clients(self, admin: Principal) -> list[dict]:
        if not is_admin_of(admin, admin.council_id):
            raise Forbidden("Only a council administrator may do this.")
        return await self.store.clients(admin.council_id)

    async def delete_client(self, admin: Principal, client_id: str) -> None:
        if not is_admin_of(admin, admin.council_id):
            raise Forbidden("Only a council administrator may do this.")
        if not await self.store.delete_client(admin.council_id, client_id):
            raise NotFound("No such client.")
        await self.sessions.revoke_person(admin.council_id, client_id)

    async def client_token(self, client_id: str, secret: str, scope: str | None,
                           ip: str | None) -> tuple[str, float, list[str]]:
        """(access token, expiry, scopes) for a registered client; ``SignInRefused`` (invalid_client) or
        ``InvalidInput`` (invalid_scope)."""

        async def check():
            doc = await self.store.client(client_id)
            expected = doc["secret_sha256"] if doc else digest("no such client")
            if not hmac.compare_digest(expected, digest(secret)) or doc is None:
                return None
            return doc

        doc = await self._guarded("token", Attempt(client_id, ip), check)
        asked = scope.split() if scope else list(doc["scopes"])
        if set(asked) - set(doc["scopes"]):
            raise InvalidInput("invalid_scope")
        # the council may have withdrawn a tool since: never more than it grants now
        granted = sorted(set(asked) & await self.grantable_scopes(doc["council_id"]))
        principal = Principal(person_id=client_id, council_id=doc["council_id"], display_name=doc["name"],
                              kind="machine", scopes=tuple(granted), login=client_id)
        token, expires_at = await self.sessions.open(principal, ttl_seconds=self.machine_token_seconds)
        return token, expires_at.timestamp(), granted
