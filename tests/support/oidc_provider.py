"""A real OpenID Connect provider on loopback for the end-to-end tests, built with Authlib.

Authorization code flow with PKCE (S256, required) and nonce (required); ID
tokens signed RS256 with a key published at ``/jwks``; discovery at
``/.well-known/openid-configuration``. There is no login page: the test says
who is signed in at the provider (``provider.user_email``) and ``/authorize``
answers at once with the redirect back to the client. ``provider.tamper``
makes the token endpoint alter the ID token's payload after signing (an
attacker in the middle), to show that the relying party checks signatures.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, jsonify
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server


@dataclass
class Client(ClientMixin):
    client_id: str
    redirect_uris: list[str]

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in ("openid", "email", "profile"))

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return False

    def check_endpoint_auth_method(self, method, endpoint):
        return method == "none"

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user_email: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return None

    def get_amr(self):
        return None


@dataclass(frozen=True)
class User:
    email: str

    def get_user_id(self):
        return self.email


class LoopbackOidcProvider:
    def __init__(self, host: str = "127.0.0.1"):
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")  # loopback http, tests only
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-" + secrets.token_hex(4), "use": "sig"})
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, Code] = {}
        self.user_email = "nobody@example.invalid"
        self.tamper = False
        self.token_requests = 0
        self.app = self._build()
        self.server = make_server(host, 0, self.app, threaded=True)
        self.issuer = f"http://{host}:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="oidc-provider", daemon=True)

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> LoopbackOidcProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(5)

    def register_client(self, client_id: str, redirect_uri: str) -> None:
        self.clients[client_id] = Client(client_id, [redirect_uri])

    # --- the Authlib server --------------------------------------------------------------------
    def _build(self) -> Flask:
        provider = self
        app = Flask("test-oidc-provider")

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

            def save_authorization_code(self, code, req):
                provider.codes[code] = Code(
                    code, req.client.client_id, req.payload.redirect_uri, req.payload.scope, req.user.email,
                    req.payload.data.get("nonce"), req.payload.data.get("code_challenge"),
                    req.payload.data.get("code_challenge_method"))

            def query_authorization_code(self, code, client):
                found = provider.codes.get(code)
                return found if found and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code):
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return User(authorization_code.user_email)

        class IdTokens(OpenIDCode):
            def exists_nonce(self, nonce, req):
                return any(c.nonce == nonce for c in provider.codes.values())

            def resolve_client_private_key(self, client):
                return provider.key

            def get_client_algorithm(self, client):
                return "RS256"

            def get_client_claims(self, client):
                return {"iss": provider.issuer, "aud": [client.get_client_id()]}

            def get_encode_header(self, client):
                return {"alg": "RS256", "kid": provider.key.kid}

            def generate_user_info(self, user, scope):
                return UserInfo(sub="sub-" + user.email, email=user.email, email_verified=True)

        server = AuthorizationServer(app, query_client=lambda cid: provider.clients.get(cid),
                                     save_token=lambda token, req: None)
        server.register_grant(CodeGrant, [IdTokens(require_nonce=True), CodeChallenge(required=True)])

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify({
                "issuer": provider.issuer, "authorization_endpoint": provider.issuer + "/authorize",
                "token_endpoint": provider.issuer + "/token", "jwks_uri": provider.issuer + "/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"], "scopes_supported": ["openid", "email", "profile"],
            })

        @app.get("/jwks")
        def jwks():
            return jsonify({"keys": [provider.key.as_dict(private=False)]})

        @app.get("/authorize")
        def authorize():
            return server.create_authorization_response(grant_user=User(provider.user_email))

        @app.post("/token")
        def token():
            provider.token_requests += 1
            response = server.create_token_response()
            if provider.tamper and response.status_code == 200:
                body = json.loads(response.get_data())
                body["id_token"] = _tampered(body["id_token"])
                response.set_data(json.dumps(body))
            return response

        return app


def _tampered(id_token: str) -> str:
    """The same signature over a changed payload (another e-mail)."""
    header, payload, signature = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["email"] = "someone.else@" + claims["email"].rpartition("@")[2]
    changed = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return ".".join((header, changed, signature))
