"""``make bench``: ratios measured side by side in one run, on this machine.

1. Throughput and latency of reading a timeline page: direct to the timeline
   service, through the gateway, and (where nginx is installed) through nginx
   proxying the same backend. Rounds alternate between the targets so that a
   noisy neighbour hurts each alike; the median round counts.
2. Event published -> timeline entry visible: a member added through the cases
   API, until the entry it makes can be read from the timeline (p50/p95).

Everything runs on loopback against a platform started for the benchmark with
its own in-memory database and RabbitMQ virtual host.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy" / "local"))

from chassis.devservers import (Proc, create_vhost, delete_vhost, ensure_rabbitmq, free_port,  # noqa: E402
                                tcp_open, wait_until)
from chassis.identity import Identity  # noqa: E402
from chassis.tokens import TokenMinter, load_signing_keys  # noqa: E402
from demo import demo_world, seed_story  # noqa: E402
from fsclient import FamilyStoryClient  # noqa: E402
from platform_runner import Platform, PlatformConfig  # noqa: E402
from world import seed  # noqa: E402

DURATION = int(os.environ.get("BENCH_SECONDS", "6"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CASE = "kc-okafor"
PAGE = f"/cases/{CASE}/entries?limit=20"


def wrk(url: str, token: str) -> dict:
    out = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{DURATION}s", "--latency", "-H",
                          f"Authorization: Bearer {token}", url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} failed responses")

    def pct(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {"rps": rps, "p50": pct("50"), "p99": pct("99")}


async def _py_load(url: str, token: str) -> dict:
    import aiohttp

    latencies: list[float] = []
    stop_at = time.monotonic() + DURATION
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async def one():
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                async with http.get(url) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"{url}: {resp.status}")
                latencies.append((time.perf_counter() - t0) * 1000)
        await asyncio.gather(*(one() for _ in range(CONNECTIONS)))
    latencies.sort()
    return {"rps": len(latencies) / DURATION, "p50": latencies[len(latencies) // 2],
            "p99": latencies[int(len(latencies) * 0.99)]}


def load(url: str, token: str) -> dict:
    return wrk(url, token) if shutil.which("wrk") else asyncio.run(_py_load(url, token))


def start_nginx(tmp: Path, upstream_port: int) -> tuple[Proc, int] | None:
    if not shutil.which("nginx"):
        return None
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
error_log {tmp}/nginx-error.log warn;
pid {tmp}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}/nginx-body; proxy_temp_path {tmp}/nginx-proxy;
  fastcgi_temp_path {tmp}/nginx-fcgi; uwsgi_temp_path {tmp}/nginx-uwsgi; scgi_temp_path {tmp}/nginx-scgi;
  upstream backend {{ server 127.0.0.1:{upstream_port}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
""")
    proc = Proc("nginx", ["nginx", "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"], dict(os.environ),
                tmp / "nginx.log").start()
    wait_until(lambda: tcp_open("127.0.0.1", port), 20, "nginx", alive=proc.alive)
    return proc, port


def proxy_benchmark(platform: Platform, client: FamilyStoryClient, tmp: Path) -> None:
    worker = client.sign_in("priya.shah")
    for i in range(40):
        worker.ok("POST", f"/api/tools/timeline/cases/{CASE}/entries", json={
            "kind": "note", "title": f"Bench note {i}", "body": "x" * 400,
            "occurred_at": f"2026-09-{1 + i % 28:02d}T10:00:00+00:00"})
    me = worker.ok("GET", "/api/me").json()
    identity = Identity(subject=me["person_id"], actor="person", council_id=me["council_id"], audience="staff",
                        roles=frozenset(me["roles"]), cases={c["case_id"]: c["role"] for c in me["cases"]})
    minter = TokenMinter(load_signing_keys(platform.keys_dir), issuer="family-story-gateway", lifetime=60)
    nginx = start_nginx(tmp, platform.ports["timeline"])
    targets = {
        "direct": lambda: load(platform.url("timeline") + PAGE, minter.mint("timeline", identity.to_claims())),
        "gateway": lambda: load(platform.gateway_url + "/api/tools/timeline" + PAGE, worker.token),
    }
    if nginx:
        targets["nginx"] = lambda: load(f"http://127.0.0.1:{nginx[1]}" + PAGE,
                                        minter.mint("timeline", identity.to_claims()))
    results: dict[str, list[dict]] = {name: [] for name in targets}
    try:
        load(platform.gateway_url + "/api/tools/timeline" + PAGE, worker.token)  # warm-up
        for _ in range(ROUNDS):
            for name, run in targets.items():
                results[name].append(run())
    finally:
        if nginx:
            nginx[0].stop()
    med = {name: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
           for name, rs in results.items()}
    tool = "wrk" if shutil.which("wrk") else "python aiohttp load generator"
    print(f"\n== Reading a timeline page ({tool}, {CONNECTIONS} connections, {DURATION}s x {ROUNDS} rounds, "
          "median round) ==")
    for name, m in med.items():
        print(f"  {name:<8} {m['rps']:8.0f} req/s   p50 {m['p50']:6.2f} ms   p99 {m['p99']:6.2f} ms")
    d, g = med["direct"], med["gateway"]
    print(f"  gateway / direct throughput ratio: {g['rps'] / d['rps']:.2f}")
    print(f"  gateway added latency: p50 +{g['p50'] - d['p50']:.2f} ms, p99 +{g['p99'] - d['p99']:.2f} ms")
    if "nginx" in med:
        n = med["nginx"]
        print(f"  gateway / nginx throughput ratio (same backend): {g['rps'] / n['rps']:.2f}  (goal 0.6)")
        print(f"  nginx / direct throughput ratio: {n['rps'] / d['rps']:.2f}")
    else:
        print("  nginx is not installed: gateway vs nginx not measured")


def event_latency_benchmark(platform: Platform, client: FamilyStoryClient, samples: int = 40) -> None:
    backoffice = client.sign_in("backoffice.kensington-chelsea")
    worker = client.sign_in("priya.shah")
    path = f"/api/tools/timeline/cases/{CASE}/entries"
    waits = []
    for i in range(samples):
        pid = f"bench-{uuid.uuid4().hex[:8]}"
        name = f"Bench Visitor {i}"
        backoffice.ok("PUT", f"/api/cases/people/{pid}", json={"display_name": name, "kind": "family"})
        start = time.perf_counter()
        backoffice.ok("PUT", f"/api/cases/cases/{CASE}/members/{pid}", json={"role": "carer"})
        title = f"{name} joined the case as a carer"
        deadline = start + 10
        while time.perf_counter() < deadline:
            items = worker.ok("GET", path, params={"limit": 5}).json()["items"]
            if any(e["title"] == title for e in items):
                break
        else:
            raise RuntimeError(f"entry for {pid} not visible within 10 s")
        waits.append((time.perf_counter() - start) * 1000)
    waits.sort()
    print(f"\n== Event published -> timeline entry visible ({samples} member_added events) ==")
    print(f"  p50 {statistics.median(waits):.0f} ms   p95 {waits[int(len(waits) * 0.95) - 1]:.0f} ms   "
          f"max {waits[-1]:.0f} ms")


def main() -> int:
    base_amqp = os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
    ensure_rabbitmq(base_amqp)
    vhost = f"fs-bench-{uuid.uuid4().hex[:8]}"
    amqp = create_vhost(base_amqp, vhost)
    tmp = Path(tempfile.mkdtemp(prefix="fs-bench-"))
    world = demo_world()
    config = PlatformConfig(var_dir=tmp, amqp_uri=amqp, people_file=world.write_people_file(tmp / "people.json"),
                            web_concurrency=1)
    print(f"Benchmark on {os.cpu_count()} cores; platform logs in {tmp}/logs", flush=True)
    try:
        with Platform(config) as platform:
            client = FamilyStoryClient(platform.gateway_url)
            seed(client, world)
            seed_story(client)
            proxy_benchmark(platform, client, tmp)
            event_latency_benchmark(platform, client)
            client.close()
    finally:
        delete_vhost(vhost)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
