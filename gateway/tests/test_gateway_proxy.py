"""The proxy, in process, against a real HTTP upstream on loopback.

The gateway runs under uvicorn and the upstream is an aiohttp server, both on
127.0.0.1 in the test's event loop. The upstream checks the internal token
with chassis.tokens.TokenVerifier against the gateway's published JWKS.
"""

import asyncio
import contextlib
import hashlib
import json

import aiohttp
import pytest
import uvicorn
from aiohttp import web
from gateway_fakes import MemorySessionStore, make_tool
from gateway_testkit import KC

from chassis.devservers import free_port
from chassis.tokens import TokenVerifier

MB = 1024 * 1024
SECURITY = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
            "content-security-policy": "default-src 'self'; frame-ancestors 'none'"}


def pattern(size: int) -> bytes:
    block = bytes(range(256)) * 256
    return (block * (size // len(block) + 1))[:size]


class Upstream:
    """A small tool: echoes the sha256 of what it receives and who the internal token says is calling."""

    def __init__(self, gateway_url: str, service: str):
        self.verifier = TokenVerifier(gateway_url + "/.well-known/jwks.json", audience=service,
                                      issuer="family-story-gateway")
        self.first_chunk_in = asyncio.Event()
        self.client_has_first_chunk = asyncio.Event()
        self.app = web.Application(client_max_size=1024 * MB)
        self.app.router.add_route("*", "/download", self.download)
        self.app.router.add_route("*", "/{tail:.*}", self.echo)

    async def claims(self, request):
        auth = request.headers.get("Authorization", "")
        assert auth.startswith("Bearer ")
        return await asyncio.to_thread(self.verifier.verify, auth[7:])

    async def echo(self, request):
        claims = await self.claims(request)
        digest, size, chunks = hashlib.sha256(), 0, 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
            chunks += 1
            self.first_chunk_in.set()
        return web.json_response(
            {"sha256": digest.hexdigest(), "size": size, "chunks": chunks, "claims": claims,
             "path": request.raw_path, "cookie": request.headers.get("Cookie"),
             "authorization": request.headers["Authorization"][:7], "xff": request.headers.get("X-Forwarded-For")},
            headers={"Access-Control-Allow-Origin": "*", "X-Tool": "echo"})

    async def download(self, request):
        await self.claims(request)
        size = int(request.query["size"])
        data = pattern(size)
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        await resp.write(data[:64 * 1024])
        # the rest only once the caller has the first part: a buffering proxy would never get here
        await asyncio.wait_for(self.client_has_first_chunk.wait(), 10)
        for start in range(64 * 1024, size, 256 * 1024):
            await resp.write(data[start:start + 256 * 1024])
        await resp.write_eof()
        return resp


@contextlib.asynccontextmanager
async def running(make_app, gateway_settings, catalogue, upstream_alive=True):
    gw_port, up_port = free_port(), free_port()
    gateway_url, upstream_url = f"http://127.0.0.1:{gw_port}", f"http://127.0.0.1:{up_port}"
    catalogue.tools[KC].append(make_tool(tool_id="broken", name="Broken", service="nowhere"))
    urls = {"timeline": upstream_url, "cases": upstream_url, "catalogue": upstream_url,
            "plans": upstream_url, "nowhere": f"http://127.0.0.1:{free_port()}"}
    app = make_app(settings=gateway_settings(service_urls=urls), session_store=MemorySessionStore())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=gw_port, lifespan="on",
                                           log_level="warning", loop="asyncio", http="h11"))
    serving = asyncio.create_task(server.serve())
    upstream = Upstream(gateway_url, "timeline")
    runner = web.AppRunner(upstream.app)
    await runner.setup()
    if upstream_alive:
        await web.TCPSite(runner, "127.0.0.1", up_port).start()
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)  # readiness probe, bounded by the timeout above
        async with aiohttp.ClientSession(gateway_url, auto_decompress=False) as http:
            yield http, upstream
    finally:
        server.should_exit = True
        await serving
        await runner.cleanup()


async def sign_in(http, login="sam.parent.kc"):
    async with http.post("/api/session", json={"login": login}) as resp:
        assert resp.status == 201
        return {"Authorization": "Bearer " + (await resp.json())["token"]}


@pytest.fixture
def proxied(make_app, gateway_settings, catalogue):
    def go(scenario, **kwargs):
        async def main():
            async with running(make_app, gateway_settings, catalogue, **kwargs) as (http, upstream):
                return await scenario(http, upstream)

        return asyncio.run(main())

    return go


class TestStreaming:
    def test_upload_of_several_mb_is_streamed_and_arrives_intact(self, proxied):
        body = pattern(8 * MB + 123)

        async def scenario(http, upstream):
            headers = await sign_in(http)

            async def produce():
                yield body[:MB]
                # the rest only once the tool has the first part: a buffering proxy would never get here
                await asyncio.wait_for(upstream.first_chunk_in.wait(), 10)
                for start in range(MB, len(body), MB):
                    yield body[start:start + MB]

            async with http.post("/api/tools/timeline/cases/case-1/documents?x=1",
                                 headers={**headers, "Cookie": "secret=1", "Content-Type": "application/pdf"},
                                 data=produce()) as resp:
                return resp.status, await resp.json(), resp.headers

        status, echo, headers = proxied(scenario)
        assert status == 200
        assert echo["sha256"] == hashlib.sha256(body).hexdigest() and echo["size"] == len(body)
        assert echo["chunks"] > 1
        assert echo["path"] == "/cases/case-1/documents?x=1"
        assert echo["cookie"] is None and echo["xff"] == "127.0.0.1"
        claims = echo["claims"]
        assert claims["aud"] == "timeline" and claims["sub"] == "p-sam" and claims["actor"] == "person"
        assert claims["council"] == KC and claims["audience"] == "families"
        assert claims["cases"] == {"case-1": "parent"} and claims["ip"] == "127.0.0.1"
        assert claims["exp"] - claims["iat"] <= 60
        assert "Access-Control-Allow-Origin" not in headers and headers["X-Tool"] == "echo"
        for name, value in SECURITY.items():
            assert headers[name] == value

    def test_download_of_several_mb_is_streamed_back_chunk_by_chunk(self, proxied):
        size = 6 * MB

        async def scenario(http, upstream):
            headers = await sign_in(http)
            digest, got = hashlib.sha256(), 0
            async with http.get(f"/api/tools/timeline/download?size={size}", headers=headers) as resp:
                assert resp.status == 200
                async for chunk in resp.content.iter_any():
                    digest.update(chunk)
                    got += len(chunk)
                    upstream.client_has_first_chunk.set()
            return got, digest.hexdigest()

        got, digest = proxied(scenario)
        assert got == size and digest == hashlib.sha256(pattern(size)).hexdigest()


class TestRouting:
    def test_tool_off_for_my_audience_answers_like_an_unknown_tool(self, proxied):
        async def scenario(http, upstream):
            headers = await sign_in(http)  # a parent: plans is on for young people and staff only
            answers = []
            for path in ("/api/tools/plans/anything", "/api/tools/no-such-tool/anything"):
                async with http.get(path, headers=headers) as resp:
                    answers.append((resp.status, resp.headers["Content-Type"], await resp.read()))
            return answers

        off, unknown = proxied(scenario)
        assert off == unknown and off[0] == 404 and off[1] == "application/problem+json"

    def test_staff_reach_a_tool_on_for_staff(self, proxied):
        async def scenario(http, upstream):
            upstream.verifier.audience = "plans"
            async with http.get("/api/tools/plans/x", headers=await sign_in(http, "alex.sw.kc")) as resp:
                return resp.status, await resp.json()

        status, echo = proxied(scenario)
        assert status == 200 and echo["claims"]["roles"] == ["social_worker"]
        assert echo["claims"]["cases"] == {"case-1": "social_worker", "case-2": "manager"}

    @pytest.mark.parametrize("prefix,audience", [("/api/cases", "cases"), ("/api/catalogue", "catalogue")])
    def test_platform_routes_are_always_on_with_their_own_audience(self, make_app, gateway_settings, catalogue,
                                                                    prefix, audience):
        async def main():
            async with running(make_app, gateway_settings, catalogue) as (http, upstream):
                upstream.verifier.audience = audience
                async with http.get(prefix + "/people/p-sam", headers=await sign_in(http)) as resp:
                    return resp.status, await resp.json()

        status, echo = asyncio.run(main())
        assert status == 200 and echo["claims"]["aud"] == audience and echo["path"] == "/people/p-sam"

    def test_machine_reaches_any_tool_enabled_in_its_council(self, proxied):
        async def scenario(http, upstream):
            async with http.put("/api/tools/timeline/cases/c-9", json={"a": 1},
                                headers=await sign_in(http, "mosaic.kc")) as resp:
                return resp.status, await resp.json()

        status, echo = proxied(scenario)
        assert status == 200 and echo["claims"]["actor"] == "machine"
        assert echo["claims"]["scopes"] == ["cases:write"] and "cases" not in echo["claims"]

    @pytest.mark.parametrize("path", ["/api/tools/timeline/x", "/api/cases/people", "/api/catalogue/tools"])
    def test_no_session_no_proxy(self, proxied, path):
        async def scenario(http, upstream):
            async with http.get(path, headers={"Authorization": "Bearer forged"}) as resp:
                return resp.status, resp.headers["Content-Type"], resp.headers["WWW-Authenticate"]

        assert proxied(scenario) == (401, "application/problem+json", "Bearer")

    @pytest.mark.parametrize("path", ["/api/tools/timeline/../../catalogue/x", "/api/tools/timeline/a/%2e%2e/b",
                                      "/api/tools/timeline/./x"])
    def test_dot_segments_are_refused(self, proxied, path):
        async def scenario(http, upstream):
            headers = await sign_in(http)
            # a raw request: HTTP clients would remove the dot segments before sending
            reader, writer = await asyncio.open_connection(http._base_url.host, http._base_url.port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {headers['Authorization']}\r\n"
                         "Connection: close\r\n\r\n".encode())
            status_line = await reader.readline()
            writer.close()
            return int(status_line.split()[1])

        assert proxied(scenario) == 404

    def test_unreachable_tool_answers_503_problem(self, proxied):
        async def scenario(http, upstream):
            async with http.get("/api/tools/broken/x", headers=await sign_in(http)) as resp:
                return resp.status, resp.headers["Content-Type"], json.loads(await resp.read())

        status, ctype, problem = proxied(scenario)
        assert status == 503 and ctype == "application/problem+json" and problem["status"] == 503

