"""Sign-in end to end through the gateway: staff through their council's OpenID Connect provider (a real
Authlib provider on loopback), families by invitation + password + TOTP, machines by client credentials,
sign-out, disabling, lockout, and what is never accepted as a credential."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pyotp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from oidc_provider import LoopbackOidcProvider

B = "council-b"
CASE = "case-si"
WORKER_EMAIL = "sid.worker@council-b.example"
CLIENT_ID = "family-story-b"
TIMELINE = f"/api/tools/timeline/cases/{CASE}/entries"
REFUSED = {"status": 401}


@pytest.fixture(scope="module")
def provider(platform):
    running = LoopbackOidcProvider().start()
    running.register_client(CLIENT_ID, platform.gateway_url + "/api/oidc/callback")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def signin_world(platform, sessions, provider):
    """A case of council B with a staff member (signs in through OIDC) and family members to invite."""
    machine = sessions("backoffice.council-b")
    people = {"si-worker": ("Sid Worker", "staff"), "si-parent": ("Sam Si", "family"),
              "si-disable": ("Dee Si", "family"), "si-lock": ("Lou Si", "family"), "si-out": ("Otto Si", "family"),
              "si-second": ("Sec Ond", "staff"), "si-reset": ("Rae Si", "family")}
    for person_id, (name, kind) in people.items():
        machine.ok("PUT", f"/api/cases/people/{person_id}", json={"display_name": name, "kind": kind})
    machine.ok("PUT", f"/api/cases/cases/{CASE}", json={"reference": "B-SI", "title": "Sign-in family"})
    for person_id in ("si-worker", "si-second"):
        machine.ok("PUT", f"/api/cases/cases/{CASE}/members/{person_id}", json={"role": "social_worker"})
    for person_id in ("si-parent", "si-disable", "si-lock", "si-out", "si-reset"):
        machine.ok("PUT", f"/api/cases/cases/{CASE}/members/{person_id}", json={"role": "parent"})
    admin = sessions("admin.b")
    require_staff_totp(admin, provider, False)
    admin.ok("PUT", "/api/admin/staff/si-worker", json={"login": WORKER_EMAIL, "display_name": "Sid Worker",
                                                        "roles": ["social_worker"]})
    return admin


def require_staff_totp(admin, provider, required: bool) -> None:
    admin.ok("PUT", f"/api/catalogue/councils/{B}/sign-in", json={
        "oidc": {"issuer": provider.issuer, "client_id": CLIENT_ID, "allowed_domains": ["council-b.example"]},
        "staff_totp_required": required})


# --- OpenID Connect helpers -------------------------------------------------------------------------
def browser(platform) -> httpx.Client:
    return httpx.Client(base_url=platform.gateway_url, timeout=30)


def to_provider_and_back(web: httpx.Client, provider, email: str) -> str:
    """Start at the gateway, let the provider answer for ``email``; the callback URL it sends us to."""
    provider.user_email = email
    start = web.get(f"/api/oidc/{B}/start")
    assert start.status_code == 303, start.text
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
    back = httpx.get(start.headers["location"])
    assert back.status_code == 302, back.text
    return back.headers["location"]


def oidc_sign_in(platform, provider, email: str = WORKER_EMAIL) -> tuple[httpx.Client, httpx.Response]:
    web = browser(platform)
    callback = to_provider_and_back(web, provider, email)
    return web, web.get(callback)


@pytest.fixture(scope="module")
def worker(platform, provider, signin_world):
    """The staff member's web session (cookies) after a real OIDC sign-in."""
    web, done = oidc_sign_in(platform, provider)
    assert done.status_code == 303 and done.headers["location"] == "/", done.text
    yield web
    web.close()


def bearer(token: str) -> dict:
    return {"Authorization": "Bearer " + token}


def same_answer(a: httpx.Response, b: httpx.Response) -> bool:
    return a.status_code == b.status_code and a.json() == b.json()


# --- staff: OpenID Connect ---------------------------------------------------------------------------
class TestOidcSignIn:
    def test_staff_member_signs_in_and_reaches_their_cases_tools(self, worker):
        me = worker.get("/api/me")
        assert me.status_code == 200, me.text
        assert me.json()["person_id"] == "si-worker" and me.json()["kind"] == "staff"
        assert {"case_id": CASE, "role": "social_worker"} in me.json()["cases"]
        assert "timeline" in [t["tool_id"] for t in worker.get("/api/tools").json()["items"]]
        assert worker.get(TIMELINE).status_code == 200

    def test_session_cookie_is_httponly_and_samesite(self, platform, provider, signin_world):
        web, done = oidc_sign_in(platform, provider)
        cookies = done.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("fs_session="))
        assert "HttpOnly" in session and "SameSite=Lax" in session
        assert any(c.startswith("fs_csrf=") and "HttpOnly" not in c for c in cookies)
        web.close()

    def test_unsafe_request_by_cookie_needs_the_csrf_header(self, platform, provider, signin_world):
        web, _ = oidc_sign_in(platform, provider)
        without = web.post("/api/me/totp")
        assert without.status_code == 403 and without.headers["content-type"] == "application/problem+json"
        signed_out = web.delete("/api/session", headers={"X-CSRF-Token": web.cookies["fs_csrf"]})
        assert signed_out.status_code == 204
        assert web.get("/api/me").status_code == 401
        web.close()

    def test_wrong_state_is_refused(self, platform, provider, signin_world):
        web = browser(platform)
        callback = urlsplit(to_provider_and_back(web, provider, WORKER_EMAIL))
        query = {k: v[0] for k, v in parse_qs(callback.query).items()}
        query["state"] = secrets.token_urlsafe(32)
        answer = web.get(urlunsplit(callback._replace(query=urlencode(query))))
        assert answer.status_code == 401 and "fs_session" not in web.cookies
        web.close()

    def test_replayed_code_is_refused(self, platform, provider, signin_world):
        web = browser(platform)
        callback = to_provider_and_back(web, provider, WORKER_EMAIL)
        assert web.get(callback).status_code == 303
        web.cookies.clear()
        web.cookies.update({"fs_oidc": "x"})
        assert web.get(callback).status_code == 401
        web.close()

    def test_callback_from_another_browser_is_refused(self, platform, provider, signin_world):
        web = browser(platform)
        callback = to_provider_and_back(web, provider, WORKER_EMAIL)
        assert browser(platform).get(callback).status_code == 401

    def test_foreign_domain_email_is_refused(self, platform, provider, signin_world):
        web, done = oidc_sign_in(platform, provider, "sid.worker@elsewhere.example")
        assert done.status_code == 401 and "fs_session" not in web.cookies

    def test_allowed_domain_without_a_staff_account_is_refused(self, platform, provider, signin_world):
        _web, done = oidc_sign_in(platform, provider, "stranger@council-b.example")
        assert done.status_code == 401

    def test_tampered_id_token_is_refused(self, platform, provider, signin_world):
        provider.tamper = True
        try:
            _web, done = oidc_sign_in(platform, provider, WORKER_EMAIL)
        finally:
            provider.tamper = False
        assert done.status_code == 401

    def test_id_token_is_not_an_access_token_for_the_gateway(self, client, provider, signin_world):
        redirect = "http://127.0.0.1:1/elsewhere"
        provider.register_client("another-client", redirect)
        provider.user_email = WORKER_EMAIL
        verifier = secrets.token_urlsafe(32)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        back = httpx.get(provider.issuer + "/authorize", params={
            "response_type": "code", "client_id": "another-client", "redirect_uri": redirect,
            "scope": "openid email", "state": "s", "nonce": "n", "code_challenge": challenge,
            "code_challenge_method": "S256"})
        code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
        tokens = httpx.post(provider.issuer + "/token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "client_id": "another-client", "code_verifier": verifier}).json()
        for token in (tokens["id_token"], tokens["access_token"]):
            assert client.http.get("/api/me", headers=bearer(token)).status_code == 401
            assert client.http.get(f"/api/cases/cases/{CASE}", headers=bearer(token)).status_code == 401
            assert client.http.get(TIMELINE, headers=bearer(token)).status_code == 401


# --- families: invitation, password, TOTP -------------------------------------------------------------
def notifications(platform) -> list[dict]:
    path = Path(platform.config.var_dir) / "notifications.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def invite(platform, worker, person_id: str, email: str) -> str:
    sent = worker.post("/api/invitations", headers={"X-CSRF-Token": worker.cookies["fs_csrf"]},
                       json={"case_id": CASE, "person_id": person_id, "send_to": email, "display_name": person_id})
    assert sent.status_code == 201, sent.text
    message = [n for n in notifications(platform) if n["to"] == email and n["kind"] == "invitation"][-1]
    return message["personalisation"]["code"]


def join(platform, client, worker, person_id: str, email: str, password: str) -> str:
    code = invite(platform, worker, person_id, email)
    joined = client.http.post("/api/invitations/accept", json={"code": code, "password": password})
    assert joined.status_code == 201, joined.text
    return joined.json()["token"]


PASSWORD = "amber-kettle-orbit-42"


class TestInvitation:
    def test_invitation_password_totp_then_sign_in(self, platform, client, worker):
        email = "sam.si@family.example"
        code = invite(platform, worker, "si-parent", email)
        weak = client.http.post("/api/invitations/accept", json={"code": code, "password": "password1234"})
        assert weak.status_code == 422
        short = client.http.post("/api/invitations/accept", json={"code": code, "password": "short"})
        assert short.status_code == 422
        joined = client.http.post("/api/invitations/accept", json={"code": code, "password": PASSWORD})
        assert joined.status_code == 201, joined.text
        again = client.http.post("/api/invitations/accept", json={"code": code, "password": PASSWORD})
        assert again.status_code == 401  # one time only
        token = joined.json()["token"]
        me = client.http.get("/api/me", headers=bearer(token)).json()
        assert me["person_id"] == "si-parent" and {"case_id": CASE, "role": "parent"} in me["cases"]

        signed_in = client.http.post("/api/session", json={"login": email, "password": PASSWORD})
        assert signed_in.status_code == 201
        secret = client.http.post("/api/me/totp", headers=bearer(token)).json()["secret"]
        totp = pyotp.TOTP(secret)
        assert client.http.post("/api/me/totp/confirm", headers=bearer(token),
                                json={"code": totp.now()}).status_code == 204

        without = client.http.post("/api/session", json={"login": email, "password": PASSWORD})
        assert without.status_code == 401
        wrong = client.http.post("/api/session", json={"login": email, "password": PASSWORD,
                                                       "totp_code": "000000" if totp.now() != "000000" else "111111"})
        assert wrong.status_code == 401
        next_code = totp.at(time.time() + 30)  # the confirming code's step is used up: no replay
        with_totp = client.http.post("/api/session", json={"login": email, "password": PASSWORD,
                                                           "totp_code": next_code})
        assert with_totp.status_code == 201, with_totp.text
        assert with_totp.json()["person"]["person_id"] == "si-parent"
        replayed = client.http.post("/api/session", json={"login": email, "password": PASSWORD,
                                                          "totp_code": next_code})
        assert replayed.status_code == 401

    def test_only_staff_on_the_case_invite_and_only_family_side_members(self, client, sessions, worker, signin_world):
        parent = sessions("parent1.a")  # council A family member: no such case for them
        assert parent.post("/api/invitations", json={"case_id": CASE, "person_id": "si-parent",
                                                     "send_to": "x@family.example", "display_name": "X"}
                           ).status_code == 404
        other_worker = sessions("worker.b")  # council B staff, not on this case
        assert other_worker.post("/api/invitations", json={"case_id": CASE, "person_id": "si-parent",
                                                           "send_to": "x@family.example", "display_name": "X"}
                                 ).status_code == 404
        staff = worker.post("/api/invitations", headers={"X-CSRF-Token": worker.cookies["fs_csrf"]},
                            json={"case_id": CASE, "person_id": "si-worker", "send_to": "y@family.example",
                                  "display_name": "Y"})
        assert staff.status_code == 422


# --- sign-out, disabling ----------------------------------------------------------------------------------
class TestRevocation:
    def test_sign_out_ends_the_token_on_the_next_request(self, platform, client, worker):
        token = join(platform, client, worker, "si-out", "otto.si@family.example", PASSWORD)
        assert client.http.get(TIMELINE, headers=bearer(token)).status_code == 200  # cached by the proxy now
        assert client.http.delete("/api/session", headers=bearer(token)).status_code == 204
        assert client.http.get(TIMELINE, headers=bearer(token)).status_code == 401
        assert client.http.get("/api/me", headers=bearer(token)).status_code == 401

    def test_disabled_person_gets_401_on_the_next_request(self, platform, client, worker, signin_world):
        email = "dee.si@family.example"
        token = join(platform, client, worker, "si-disable", email, PASSWORD)
        assert client.http.get(TIMELINE, headers=bearer(token)).status_code == 200  # cached by the proxy now
        done = signin_world.put("/api/admin/people/si-disable/status", json={"disabled": True})
        assert done.status_code == 200 and done.json()["disabled"] is True
        assert client.http.get(TIMELINE, headers=bearer(token)).status_code == 401
        assert client.http.get("/api/me", headers=bearer(token)).status_code == 401
        assert client.http.post("/api/session", json={"login": email, "password": PASSWORD}).status_code == 401
        signin_world.ok("PUT", "/api/admin/people/si-disable/status", json={"disabled": False})
        assert client.http.post("/api/session", json={"login": email, "password": PASSWORD}).status_code == 201

    def test_only_a_council_admin_disables(self, sessions, signin_world):
        assert sessions("worker.b").put("/api/admin/people/si-parent/status", json={"disabled": True}).status_code == 403


# --- machines: client credentials ------------------------------------------------------------------------------
class TestClientCredentials:
    def register(self, admin, scopes):
        made = admin.post("/api/oauth/clients", json={"name": "Back office", "scopes": scopes})
        return made

    def token(self, client, client_id, secret, **form):
        return client.http.post("/api/oauth/token", data={"grant_type": "client_credentials", **form},
                                auth=(client_id, secret))

    def test_back_office_machine_writes_cases_with_its_token(self, client, signin_world):
        made = self.register(signin_world, ["cases:write", "cases:read"])
        assert made.status_code == 201, made.text
        body = made.json()
        listed = signin_world.get("/api/oauth/clients").json()["items"]
        assert body["client_id"] in [c["client_id"] for c in listed]
        assert all("client_secret" not in c and "secret_sha256" not in c for c in listed)
        issued = self.token(client, body["client_id"], body["client_secret"])
        assert issued.status_code == 200, issued.text
        assert issued.json()["token_type"] == "Bearer" and "cases:write" in issued.json()["scope"].split()
        wrote = client.http.put("/api/cases/people/si-from-machine", headers=bearer(issued.json()["access_token"]),
                                json={"display_name": "From the back office", "kind": "family"})
        assert wrote.status_code in (200, 201), wrote.text

    def test_client_without_the_scope_is_refused(self, client, signin_world):
        body = self.register(signin_world, ["cases:read"]).json()
        issued = self.token(client, body["client_id"], body["client_secret"])
        token = issued.json()["access_token"]
        wrote = client.http.put("/api/cases/people/si-nope", headers=bearer(token),
                                json={"display_name": "Nope", "kind": "family"})
        assert wrote.status_code == 403
        beyond = self.token(client, body["client_id"], body["client_secret"], scope="cases:write")
        assert beyond.status_code == 400 and beyond.json()["error"] == "invalid_scope"

    def test_scopes_beyond_the_councils_grant_cannot_be_registered(self, signin_world):
        assert self.register(signin_world, ["everything:admin"]).status_code == 422

    def test_wrong_secret_is_invalid_client(self, client, signin_world):
        body = self.register(signin_world, ["cases:read"]).json()
        wrong = self.token(client, body["client_id"], "not-the-secret")
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"

    def test_removed_client_token_stops_working(self, client, signin_world):
        body = self.register(signin_world, ["cases:read"]).json()
        token = self.token(client, body["client_id"], body["client_secret"]).json()["access_token"]
        assert client.http.get(f"/api/cases/cases/{CASE}", headers=bearer(token)).status_code != 401
        assert signin_world.delete(f"/api/oauth/clients/{body['client_id']}").status_code == 204
        assert client.http.get(f"/api/cases/cases/{CASE}", headers=bearer(token)).status_code == 401


# --- brute force --------------------------------------------------------------------------------------------
class TestLockout:
    def test_lockout_with_identical_answers_for_unknown_logins(self, platform, client, worker):
        known = "lou.si@family.example"
        join(platform, client, worker, "si-lock", known, PASSWORD)
        unknown = "nobody.si@family.example"
        timings = {known: [], unknown: []}
        for _ in range(5):
            answers = []
            for login in (known, unknown):
                started = time.perf_counter()
                answers.append(client.http.post("/api/session", json={"login": login, "password": "wrong-" * 3}))
                timings[login].append(time.perf_counter() - started)
            assert answers[0].status_code == 401 and same_answer(*answers)
        locked = [client.http.post("/api/session", json={"login": login, "password": PASSWORD})
                  for login in (known, unknown)]
        assert locked[0].status_code == 429 and same_answer(*locked)  # even the right password waits
        assert int(locked[0].headers["retry-after"]) > 0
        ratio = sum(timings[unknown]) / sum(timings[known])
        assert 0.33 < ratio < 3, timings  # an unknown login costs an argon2 verification too


# --- staff: the second factor a council requires -------------------------------------------------------------
SECOND_EMAIL = "sec.ond@council-b.example"
PENDING = "fs_second_factor"


def pending_sign_in(platform, provider) -> tuple[httpx.Client, str]:
    """An OIDC sign-in while the council requires TOTP: no session, only the pending second-factor cookie."""
    web, done = oidc_sign_in(platform, provider, SECOND_EMAIL)
    assert done.status_code == 303 and done.headers["location"] == "/#second-factor", done.text
    assert "fs_session" not in web.cookies and "fs_csrf" not in web.cookies
    cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith(PENDING + "="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/api/second-factor" in cookie
    return web, web.cookies[PENDING]


def confirm(web: httpx.Client, code: str) -> httpx.Response:
    return web.post("/api/second-factor/confirm", json={"code": code})


def other_code(code: str) -> str:
    return "000000" if code != "000000" else "111111"


class TestStaffSecondFactor:
    def test_council_requiring_totp_of_staff_puts_a_second_factor_after_oidc(self, platform, client, provider,
                                                                             signin_world):
        signin_world.ok("PUT", "/api/admin/staff/si-second", json={
            "login": SECOND_EMAIL, "display_name": "Sec Ond", "roles": ["social_worker"]})
        require_staff_totp(signin_world, provider, True)
        try:
            self.journey(platform, client, provider, signin_world)
        finally:
            require_staff_totp(signin_world, provider, False)  # the other tests sign staff in without it

    def journey(self, platform, client, provider, admin):
        # 1. the OIDC sign-in lands in the pending state, which reaches nothing but the second-factor step
        web, pending = pending_sign_in(platform, provider)
        for path in ("/api/me", "/api/tools", TIMELINE, f"/api/cases/cases/{CASE}"):
            assert web.get(path).status_code == 401, path
            assert client.http.get(path, headers=bearer(pending)).status_code == 401, path
            assert client.http.get(path, headers={"Cookie": f"fs_session={pending}; {PENDING}={pending}"}
                                   ).status_code == 401, path
        status = web.get("/api/second-factor")
        assert status.status_code == 200, status.text
        assert status.json() == {"status": "second_factor_required", "method": "totp", "enrolled": False}
        assert client.http.get("/api/second-factor").status_code == 401  # no pending state: nothing
        assert client.http.get("/api/second-factor", headers=bearer(pending)).status_code == 401  # cookie only
        assert confirm(web, "123456").status_code == 409  # nothing enrolled to confirm yet

        # 2. enrol, confirm: the full session, with the same cookies as a plain OIDC sign-in
        foreign = web.post("/api/second-factor/totp", headers={"Origin": "https://evil.example"})
        assert foreign.status_code == 403
        enrolled = web.post("/api/second-factor/totp")
        assert enrolled.status_code == 201, enrolled.text
        assert enrolled.json()["otpauth_uri"].startswith("otpauth://totp/")
        totp = pyotp.TOTP(enrolled.json()["secret"])
        assert confirm(web, other_code(totp.now())).status_code == 422
        first_code = totp.now()
        done = confirm(web, first_code)
        assert done.status_code == 200, done.text
        assert done.json()["person"]["person_id"] == "si-second" and "token" not in done.json()
        cookies = done.headers.get_list("set-cookie")
        assert any(c.startswith("fs_session=") and "HttpOnly" in c for c in cookies)
        assert any(c.startswith("fs_csrf=") for c in cookies)
        assert PENDING not in web.cookies  # cleared
        assert web.get("/api/me").json()["person_id"] == "si-second"
        assert "timeline" in [t["tool_id"] for t in web.get("/api/tools").json()["items"]]
        assert web.get(TIMELINE).status_code == 200
        replay = client.http.post("/api/second-factor/confirm", headers={"Cookie": f"{PENDING}={pending}"},
                                  json={"code": totp.at(time.time() + 30)})
        assert replay.status_code == 401  # the pending state is used up
        web.close()

        # 3. a second sign-in asks for a code: a wrong one refused, the right one works, never twice
        web, _ = pending_sign_in(platform, provider)
        assert web.get("/api/second-factor").json()["enrolled"] is True
        assert web.post("/api/second-factor/totp").status_code == 409  # no second enrolment over the first
        assert confirm(web, first_code).status_code == 422  # the enrolment's code: its step is used
        next_code = totp.at(time.time() + 30)
        assert confirm(web, other_code(next_code)).status_code == 422
        assert "fs_session" not in web.cookies
        answer = confirm(web, next_code)
        assert answer.status_code == 200, answer.text
        assert web.get("/api/me").status_code == 200
        web.close()
        web, _ = pending_sign_in(platform, provider)
        assert confirm(web, next_code).status_code == 422  # the same code again
        assert "fs_session" not in web.cookies
        web.close()

        # 4. the requirement off: the plain OIDC flow again
        require_staff_totp(admin, provider, False)
        web, done = oidc_sign_in(platform, provider, SECOND_EMAIL)
        assert done.status_code == 303 and done.headers["location"] == "/", done.text
        assert PENDING not in web.cookies and web.get("/api/me").json()["person_id"] == "si-second"
        web.close()


# --- families: password reset --------------------------------------------------------------------------------------
class TestPasswordReset:
    def test_invited_family_member_resets_their_password(self, platform, client, worker):
        email = "rae.si@family.example"
        token = join(platform, client, worker, "si-reset", email, PASSWORD)
        assert client.http.get(TIMELINE, headers=bearer(token)).status_code == 200
        other = client.http.post("/api/session", json={"login": email, "password": PASSWORD}).json()["token"]

        asked = client.http.post("/api/password-reset", json={"login": email})
        unknown = client.http.post("/api/password-reset", json={"login": "nobody.reset@family.example"})
        assert asked.status_code == 202 and same_answer(asked, unknown)
        sent = [n for n in notifications(platform) if n["to"] == email and n["kind"] == "password_reset"]
        assert len(sent) == 1 and not [n for n in notifications(platform)
                                       if n["to"] == "nobody.reset@family.example"]
        code = sent[-1]["personalisation"]["code"]

        new_password = "willow-lantern-copper-77"
        wrong = client.http.post("/api/password-reset/complete",
                                 json={"login": email, "code": "AAAAA-BBBBB-CCCCC", "password": new_password})
        assert wrong.status_code == 401
        done = client.http.post("/api/password-reset/complete",
                                json={"login": email, "code": code, "password": new_password})
        assert done.status_code == 204, done.text
        for ended in (token, other):  # every session of the person ended
            assert client.http.get("/api/me", headers=bearer(ended)).status_code == 401
            assert client.http.get(TIMELINE, headers=bearer(ended)).status_code == 401
        again = client.http.post("/api/password-reset/complete",
                                 json={"login": email, "code": code, "password": "another-" + new_password})
        assert again.status_code == 401  # the code is used up
        assert client.http.post("/api/session", json={"login": email, "password": PASSWORD}).status_code == 401
        signed_in = client.http.post("/api/session", json={"login": email, "password": new_password})
        assert signed_in.status_code == 201, signed_in.text
        assert signed_in.json()["person"]["person_id"] == "si-reset"
        assert client.http.get(TIMELINE, headers=bearer(signed_in.json()["token"])).status_code == 200
