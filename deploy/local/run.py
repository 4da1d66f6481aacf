"""``make run``: the whole platform on this machine with demo data, until Ctrl-C.

Data lives under ``var/`` and is kept across runs; a second run reuses it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo import WHO_IS_WHO, demo_world, seed_documents, seed_messages, seed_plans, seed_referrals, seed_story
from fsclient import FamilyStoryClient
from platform_runner import Platform, PlatformConfig
from world import seed

from chassis.devservers import NotReady

ROOT = Path(__file__).resolve().parents[2]


def fixed_ports(base: int) -> dict[str, int]:
    """Predictable service ports from ``base`` (8101 …); 0 picks free ports."""
    names = ("catalogue", "cases", "timeline", "documents", "messaging", "referrals", "plans")
    return {name: base + i for i, name in enumerate(names)} if base else {}


def main() -> int:
    var = Path(os.environ.get("FS_VAR_DIR", ROOT / "var"))
    world = demo_world()
    config = PlatformConfig(
        var_dir=var,
        amqp_uri=os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"),
        people_file=world.write_people_file(var / "demo-people.json"),
        mongo_uri=os.environ.get("MONGO_URI") or None,
        mongo_storage=str(var / "mongo"),
        gateway_port=int(os.environ.get("GATEWAY_PORT", "8080")),
        service_ports=fixed_ports(int(os.environ.get("FS_SERVICE_PORT_BASE", "8101"))),
        web_concurrency=int(os.environ.get("WEB_CONCURRENCY", "2")),
    )
    platform = Platform(config)
    print("Starting Family Story (logs in var/logs/) ...", flush=True)
    try:
        platform.start()
    except NotReady as exc:
        print(f"Family Story could not start: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        client = FamilyStoryClient(platform.gateway_url)
        seed(client, world)
        made = seed_story(client)
        for seed_tool in (seed_documents, seed_messages, seed_plans, seed_referrals):
            made += seed_tool(client)
        client.close()
        url = platform.gateway_url
        print(f"\nFamily Story is running at {url}/  ({'seeded' if made else 'reusing'} demo data in var/)\n")
        print("Demo sign-in (demo identity provider, development only):")
        for login, who in WHO_IS_WHO.items():
            print(f"  {login:<16} {who}")
        print("\nTry it with curl:")
        print(f"  TOKEN=$(curl -s -X POST {url}/api/session -H 'Content-Type: application/json' "
              "-d '{\"login\":\"sam.okafor\"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])')")
        print(f"  curl -s {url}/api/tools -H \"Authorization: Bearer $TOKEN\"")
        print(f"  curl -s {url}/api/tools/timeline/cases/kc-okafor/entries -H \"Authorization: Bearer $TOKEN\"")
        print("\nCtrl-C stops everything.", flush=True)
        while not stop.is_set():
            stop.wait(1)
            dead = [p.name for p in platform.procs if not p.alive()]
            if dead:
                print(f"stopped unexpectedly: {', '.join(dead)} (see var/logs/)", file=sys.stderr)
                return 1
    finally:
        print("\nStopping Family Story ...", flush=True)
        platform.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
