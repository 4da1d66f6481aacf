"""A council's sign-in settings through the HTTP API (real SecantusDB, responses validated)."""

from __future__ import annotations

import pytest
from catalogue_testkit import ADMIN_A, ADMIN_B, GATEWAY, OPERATOR, WORKER_A, A

from catalogue.app import create_app
from chassis.config import Settings
from chassis.testing import unique_db

pytestmark = pytest.mark.integration

OIDC = {"issuer": "https://login.council-a.example/", "client_id": "family-story",
        "allowed_domains": ["Council-A.example"]}


@pytest.fixture(scope="module")
def call(mongo_uri, jwks_path, minter):
    app = create_app(Settings(service_name="catalogue", mongo_uri=mongo_uri, mongo_db=unique_db("catalogue_signin"),
                              internal_jwks=jwks_path, validate_responses=True))
    client = app.test_client()

    def request(method, path, who, json=None):
        headers = {"Authorization": "Bearer " + minter.mint("catalogue", who.to_claims())}
        return client.request(method, path, json=json, headers=headers)

    assert request("PUT", f"/councils/{A}", OPERATOR, json={"name": "Council A"}).status_code in (200, 201)
    return request


def test_defaults_while_never_set(call):
    body = call("GET", f"/councils/{A}/sign-in", GATEWAY).json()
    assert body["oidc"] is None and body["staff_totp_required"] is False and body["updated_at"] is None


def test_council_admin_sets_oidc_and_the_gateway_reads_it(call):
    put = call("PUT", f"/councils/{A}/sign-in", ADMIN_A, json={"oidc": OIDC, "staff_totp_required": True})
    assert put.status_code == 200, put.text
    got = call("GET", f"/councils/{A}/sign-in", GATEWAY).json()
    assert got["oidc"] == {"issuer": "https://login.council-a.example", "client_id": "family-story",
                           "allowed_domains": ["council-a.example"], "client_secret_env": None}
    assert got["staff_totp_required"] is True and got["updated_by"] == ADMIN_A.subject


@pytest.mark.parametrize("issuer", ["http://login.example", "ftp://x.example", "https://x.example/?a=b",
                                    "https://user:pw@x.example"])
def test_issuer_must_be_https_except_on_loopback(call, issuer):
    body = {"oidc": {**OIDC, "issuer": issuer}, "staff_totp_required": False}
    assert call("PUT", f"/councils/{A}/sign-in", OPERATOR, json=body).status_code == 400


def test_loopback_http_issuer_is_accepted_for_development(call):
    body = {"oidc": {**OIDC, "issuer": "http://127.0.0.1:8999"}, "staff_totp_required": False}
    assert call("PUT", f"/councils/{A}/sign-in", OPERATOR, json=body).status_code == 200


def test_bad_domains_are_refused(call):
    body = {"oidc": {**OIDC, "allowed_domains": ["not a domain"]}, "staff_totp_required": False}
    assert call("PUT", f"/councils/{A}/sign-in", OPERATOR, json=body).status_code == 400


@pytest.mark.parametrize("who,status", [(WORKER_A, 403), (ADMIN_B, 404), (GATEWAY, 404)])
def test_only_the_operator_or_the_councils_admin_change_it(call, who, status):
    body = {"oidc": None, "staff_totp_required": False}
    assert call("PUT", f"/councils/{A}/sign-in", who, json=body).status_code == status


@pytest.mark.parametrize("who,status", [(WORKER_A, 403), (ADMIN_B, 404)])
def test_others_cannot_read_it(call, who, status):
    assert call("GET", f"/councils/{A}/sign-in", who).status_code == status
