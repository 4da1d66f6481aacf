"""The gateway's own operations through the ASGI app (responses validated against contracts/gateway.yaml)."""

import pytest
from gateway_fakes import MemorySessionStore
from gateway_testkit import KC
from starlette.testclient import TestClient

from chassis.tokens import generate_key

SECURITY = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
            "content-security-policy": "default-src 'self'; frame-ancestors 'none'"}


@pytest.fixture
def client(make_app):
    with TestClient(make_app()) as c:
        yield c


def sign_in(client, login="sam.parent.kc"):
    resp = client.post("/api/session", json={"login": login})
    assert resp.status_code == 201, resp.text
    return {"Authorization": "Bearer " + resp.json()["token"]}


def assert_problem(resp, status):
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/problem+json"
    assert set(resp.json()) >= {"type", "title", "status", "detail"}


class TestSignIn:
    def test_demo_login_opens_a_session(self, client):
        resp = client.post("/api/session", json={"login": "alex.sw.kc"})
        assert resp.status_code == 201
        body = resp.json()
        assert body["person"] == {"person_id": "p-alex", "council_id": KC, "display_name": "Alex Worker",
                                  "kind": "staff", "roles": ["social_worker"]}
        assert len(body["token"]) >= 40 and body["expires_at"]

    def test_unknown_login_is_refused_without_saying_why(self, client):
        unknown = client.post("/api/session", json={"login": "no.such.person"})
        assert_problem(unknown, 401)
        assert "no.such.person" not in unknown.text
        assert "exist" not in unknown.json()["detail"].lower()

    def test_extra_fields_are_refused(self, client):
        assert_problem(client.post("/api/session", json={"login": "sam.parent.kc", "admin": True}), 400)

    def test_production_has_no_demo_sign_in(self, make_app, gateway_settings, tmp_path):
        generate_key(tmp_path / "keys")
        app = make_app(settings=gateway_settings(env="production"))
        with TestClient(app) as c:
            assert_problem(c.post("/api/session", json={"login": "sam.parent.kc"}), 404)
            assert_problem(c.get("/api/session/demo-people"), 404)
            assert c.get("/health").headers["strict-transport-security"].startswith("max-age=")

    def test_production_without_a_signing_key_refuses_to_start(self, make_app, gateway_settings):
        with pytest.raises(RuntimeError, match="signing key"):
            make_app(settings=gateway_settings(env="production"))

    def test_demo_people_are_listed_outside_production(self, client):
        logins = [p["login"] for p in client.get("/api/session/demo-people").json()["items"]]
        assert "sam.parent.kc" in logins and "alex.sw.kc" in logins


class TestSignOut:
    def test_signed_out_token_stops_working_at_once(self, client):
        headers = sign_in(client)
        assert client.get("/api/me", headers=headers).status_code == 200
        assert client.get("/api/tools/timeline/x", headers=headers).status_code != 401
        assert client.delete("/api/session", headers=headers).status_code == 204
        assert_problem(client.get("/api/me", headers=headers), 401)
        assert_problem(client.get("/api/tools/timeline/x", headers=headers), 401)
        assert_problem(client.delete("/api/session", headers=headers), 401)


class TestMe:
    def test_family_member_sees_their_council_audience_and_cases(self, client):
        me = client.get("/api/me", headers=sign_in(client)).json()
        assert me == {"person_id": "p-sam", "council_id": KC, "display_name": "Sam Parent", "kind": "family",
                      "roles": [], "audience": "families", "cases": [{"case_id": "case-1", "role": "parent"}]}

    def test_operator_has_no_council_audience_or_cases(self, client):
        me = client.get("/api/me", headers=sign_in(client, "olu.ops")).json()
        assert me["council_id"] is None and me["audience"] is None and me["cases"] == []

    @pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}])
    def test_without_a_live_session_answers_401(self, client, headers):
        assert_problem(client.get("/api/me", headers=headers), 401)


class TestTools:
    @pytest.mark.parametrize("login,expected", [
        ("sam.parent.kc", ["timeline"]),
        ("jo.young.kc", ["plans", "timeline"]),
        ("alex.sw.kc", ["plans", "timeline"]),
        ("hf.parent", ["plans"]),
        ("olu.ops", []),
    ])
    def test_home_screen_shows_tools_on_for_my_council_and_audience(self, client, login, expected):
        items = client.get("/api/tools", headers=sign_in(client, login)).json()["items"]
        assert [t["tool_id"] for t in items] == expected
        assert all(set(t) == {"tool_id", "name", "summary", "version"} for t in items)

    def test_catalogue_down_answers_503(self, client, catalogue):
        catalogue.fail = True
        assert_problem(client.get("/api/tools", headers=sign_in(client)), 503)


class TestPlatform:
    def test_health(self, client):
        assert client.get("/health").json() == {"status": "ok", "service": "gateway"}

    def test_jwks_publishes_the_signing_key(self, client):
        keys = client.get("/.well-known/jwks.json").json()["keys"]
        assert len(keys) == 1 and keys[0]["kty"] == "OKP" and keys[0]["alg"] == "EdDSA" and keys[0]["kid"]

    @pytest.mark.parametrize("path", ["/health", "/", "/static/app.js", "/nowhere", "/api/me",
                                      "/api/tools/timeline/x"])
    def test_security_headers_on_every_answer(self, client, path):
        resp = client.get(path, headers={"Origin": "https://evil.example"})
        for name, value in SECURITY.items():
            assert resp.headers[name] == value
        assert "strict-transport-security" not in resp.headers
        assert not any(h.startswith("access-control-") for h in resp.headers)

    def test_front_end_is_served(self, client):
        page = client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<script src="/static/app.js"' in page.text
        assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")

    def test_preflight_is_not_answered_with_cors(self, client):
        resp = client.options("/api/me", headers={"Origin": "https://evil.example",
                                                  "Access-Control-Request-Method": "GET"})
        assert not any(h.startswith("access-control-") for h in resp.headers)


def test_each_app_keeps_its_own_sessions(make_app):
    with TestClient(make_app(session_store=MemorySessionStore())) as one, \
            TestClient(make_app(session_store=MemorySessionStore())) as two:
        headers = sign_in(one)
        assert one.get("/api/me", headers=headers).status_code == 200
        assert two.get("/api/me", headers=headers).status_code == 401
