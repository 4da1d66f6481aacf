"""A small API client for Family Story's gateway: what the demo seeding, the
end-to-end tests and the benchmark use to act as a person or a machine."""

from __future__ import annotations

import httpx


class ApiError(AssertionError):
    pass


class Session:
    def __init__(self, http: httpx.Client, token: str | None, login: str):
        self.http = http
        self.token = token
        self.login = login

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {**self._headers(), **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kw) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw) -> httpx.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def ok(self, method: str, path: str, **kw) -> httpx.Response:
        """The request, which must succeed (2xx)."""
        resp = self.request(method, path, **kw)
        if not resp.is_success:
            raise ApiError(f"{self.login}: {method} {path} -> {resp.status_code} {resp.text[:300]}")
        return resp

    def sign_out(self) -> None:
        self.ok("DELETE", "/api/session")


class FamilyStoryClient:
    def __init__(self, base_url: str, timeout: float = 30.0):
        self.http = httpx.Client(base_url=base_url, timeout=timeout)

    def anonymous(self) -> Session:
        return Session(self.http, None, "anonymous")

    def sign_in(self, login: str) -> Session:
        resp = self.http.post("/api/session", json={"login": login})
        if resp.status_code != 201:
            raise ApiError(f"sign-in as {login} -> {resp.status_code} {resp.text[:300]}")
        return Session(self.http, resp.json()["token"], login)

    def close(self) -> None:
        self.http.close()
