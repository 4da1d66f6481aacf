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

from demo import demo_world, seed_story  # noqa: E402
from fsclient import FamilyStoryClient  # noqa: E402
from platform_runner import Platform, PlatformConfig  # noqa: E402
from world import seed  # noqa: E402

from chassis.devservers import Proc, create_vhost, delete_vhost, ensure_rabbitmq, free_port, tcp_open, wait_until  # noqa: E402
from chassis.identity import Identity  # noqa: E402
from chassis.tokens import TokenMinter, load_signing_keys  # noqa: E402

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
    try:
        # a real page (the backend's own work dominates) and a bare hop (/health: the proxy dominates)
        for label, path in (("Reading a timeline page of 20 entries", PAGE),
                            ("Bare proxy hop (the tool's /health)", "/health")):
            compare(label, platform, worker.token, minter, identity, path, nginx)
    finally:
        if nginx:
            nginx[0].stop()


def compare(label: str, platform: Platform, session_token: str, minter: TokenMinter, identity: Identity,
            path: str, nginx) -> None:
    targets = {
        "direct": lambda: load(platform.url("timeline") + path, minter.mint("timeline", identity.to_claims())),
        "gateway": lambda: load(platform.gateway_url + "/api/tools/timeline" + path, session_token),
    }
    if nginx:
        targets["nginx"] = lambda: load(f"http://127.0.0.1:{nginx[1]}" + path,
                                        minter.mint("timeline", identity.to_claims()))
    results: dict[str, list[dict]] = {name: [] for name in targets}
    targets["gateway"]()  # warm-up
    for _ in range(ROUNDS):
        for name, run in targets.items():
            results[name].append(run())
    med = {name: {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50", "p99")}
           for name, rs in results.items()}
    tool = "wrk" if shutil.which("wrk") else "python aiohttp load generator"
    print(f"\n== {label} ({tool}, {CONNECTIONS} connections, {DURATION}s x {ROUNDS} rounds, median round) ==")
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


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def _reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def document_transfer_benchmark(platform: Platform, client: FamilyStoryClient, size_mb: int = 50) -> None:
    """A 50 MB upload and download through the gateway, with each process's peak RSS growth."""
    import hashlib

    if "documents" not in platform.ports:
        print("\n== Documents: the documents tool is not in this run ==")
        return
    watched = {}
    for name in ("gateway-web", "documents-web"):
        master = platform.proc(name).popen.pid
        for child in _children(master):
            watched[f"{name.removesuffix('-web')} (pid {child})"] = child
    if platform.mongo_proc:
        watched[f"database (pid {platform.mongo_proc.popen.pid})"] = platform.mongo_proc.popen.pid
    resettable = all(_reset_peak(pid) for pid in watched.values())
    base = {k: (_status_kb(pid, "VmRSS"), _status_kb(pid, "VmHWM")) for k, pid in watched.items()}
    worker = client.sign_in("priya.shah")
    line = b"Family Story benchmark: a plain text document streamed through the gateway.\n"
    chunk = (line * (1024 * 1024 // len(line) + 1))[:1024 * 1024]
    digest = hashlib.sha256()

    def body():
        for _ in range(size_mb):
            digest.update(chunk)
            yield chunk

    t0 = time.perf_counter()
    made = worker.ok("POST", f"/api/tools/documents/cases/{CASE}/documents",
                     params={"filename": "bench.txt", "audience": "staff"},
                     headers={"Content-Type": "application/octet-stream"}, content=body())
    up = time.perf_counter() - t0
    doc_id = made.json()["document_id"]
    got = hashlib.sha256()
    t0 = time.perf_counter()
    with worker.http.stream("GET", f"/api/tools/documents/cases/{CASE}/documents/{doc_id}/content",
                            headers={"Authorization": f"Bearer {worker.token}"}) as resp:
        resp.raise_for_status()
        for part in resp.iter_bytes():
            got.update(part)
    down = time.perf_counter() - t0
    same = got.hexdigest() == digest.hexdigest()
    print(f"\n== {size_mb} MB upload and download through the gateway ==")
    print(f"  upload {up:.2f}s ({size_mb / up:.0f} MB/s), download {down:.2f}s ({size_mb / down:.0f} MB/s), "
          f"SHA-256 {'identical' if same else 'DIFFERENT'}")
    print("  peak RSS growth during the transfer (goal <= 16 MB)" +
          ("" if resettable else " [peak counters could not be reset: growth is over the process's life]"))
    for k, pid in watched.items():
        rss0, hwm0 = base[k]
        growth = _status_kb(pid, "VmHWM") - (rss0 if resettable else hwm0)
        print(f"    {k:<24} +{growth / 1024:6.1f} MB")


def message_latency_benchmark(platform: Platform, client: FamilyStoryClient, samples: int = 40) -> None:
    """A parent's message, from send until the social worker sees it in the thread."""
    if "messaging" not in platform.ports:
        return
    sam, priya = client.sign_in("sam.okafor"), client.sign_in("priya.shah")
    threads = f"/api/tools/messaging/cases/{CASE}/threads"
    tid = sam.ok("POST", threads, json={"subject": "Bench", "participants": ["kc-priya-shah"],
                                        "body": "first"}).json()["thread_id"]
    waits = []
    for i in range(samples):
        text = f"bench message {i} {uuid.uuid4().hex[:6]}"
        start = time.perf_counter()
        sam.ok("POST", f"{threads}/{tid}/messages", json={"body": text})
        while True:
            items = priya.ok("GET", f"{threads}/{tid}/messages", params={"limit": 5}).json()["items"]
            if any(m.get("body") == text for m in items):
                break
            if time.perf_counter() - start > 10:
                raise RuntimeError("message not visible within 10 s")
        waits.append((time.perf_counter() - start) * 1000)
    waits.sort()
    print(f"\n== Message sent -> visible to the other side ({samples} messages, through the gateway) ==")
    print(f"  p50 {statistics.median(waits):.0f} ms   p95 {waits[int(len(waits) * 0.95) - 1]:.0f} ms")


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
            message_latency_benchmark(platform, client)
            document_transfer_benchmark(platform, client)
            client.close()
    finally:
        delete_vhost(vhost)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
