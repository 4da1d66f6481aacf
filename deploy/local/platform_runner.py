"""The whole platform on one machine: used by ``make run``, the end-to-end tests and the benchmark.

Starts (or uses) the datastore and broker, declares every worker's queues
before anything publishes, starts every web process under gunicorn and every
worker under nameko, and waits for each to be ready by probing it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from chassis.devservers import NotReady, Proc, ensure_rabbitmq, free_port, http_ok, start_mongo_compatible, wait_until
from chassis.tokens import generate_key, jwks_of, load_signing_keys

ROOT = Path(__file__).resolve().parents[2]
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    web: str
    worker: str | None


PLATFORM_SERVICES = (
    ServiceSpec("catalogue", "catalogue.app:create_app()", "catalogue.worker:CatalogueWorker"),
    ServiceSpec("cases", "cases.app:create_app()", "cases.worker:CasesWorker"),
)
GATEWAY = ServiceSpec("gateway", "gateway.app:create_app()", None)


def tool_manifests() -> dict[str, dict]:
    """Every first-party tool in this repository: a service folder with a manifest."""
    only = {t for t in os.environ.get("FS_TOOLS", "").split(",") if t}  # run a subset of the tools
    found = {}
    for path in sorted((ROOT / "services").glob("*/manifest.json")):
        manifest = json.loads(path.read_text())
        if not only or manifest["id"] in only:
            found[manifest["id"]] = manifest
    return found


def tool_services() -> tuple[ServiceSpec, ...]:
    specs = []
    for tool_id in tool_manifests():
        worker = "timeline.worker:build_worker" if tool_id == "timeline" else \
            f"{tool_id}.worker:{tool_id.capitalize()}Worker"
        specs.append(ServiceSpec(tool_id, f"{tool_id}.app:create_app()", worker))
    return tuple(specs)


def story_sources() -> str:
    """The events the timeline turns into entries: the case directory's and every tool's."""
    sources = ["cases.member_added", "cases.member_removed"]
    for tool_id, manifest in tool_manifests().items():
        if tool_id != "timeline":
            sources += [e for e in manifest["events"]["publishes"] if e not in sources]
    return ",".join(sources)


SERVICES = PLATFORM_SERVICES + tool_services()


@dataclass
class PlatformConfig:
    var_dir: Path
    amqp_uri: str
    people_file: Path
    mongo_uri: str | None = None  # None: start SecantusDB
    mongo_storage: str = ":memory:"
    gateway_port: int = 0
    service_ports: dict[str, int] = field(default_factory=dict)
    fs_env: str = "development"
    validate_responses: bool = False
    web_concurrency: int = 1
    db_prefix: str = "family_story"
    extra_env: dict[str, str] = field(default_factory=dict)


class Platform:
    def __init__(self, config: PlatformConfig):
        self.config = config
        self.procs: list[Proc] = []
        self.mongo_proc: Proc | None = None
        self.mongo_uri = config.mongo_uri or ""
        self.ports = {s.name: config.service_ports.get(s.name) or free_port() for s in SERVICES}
        self.ports["gateway"] = config.gateway_port or free_port()
        self.keys_dir = config.var_dir / "keys"
        self.jwks_path = config.var_dir / "jwks.json"
        self.logs = config.var_dir / "logs"

    # --- addresses ---------------------------------------------------------------
    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def gateway_url(self) -> str:
        return self.url("gateway")

    def service_urls(self) -> str:
        return ",".join(f"{s.name}={self.url(s.name)}" for s in SERVICES)

    # --- environment of each process ------------------------------------------------
    def env_for(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            SERVICE_NAME=name,
            FS_ENV=self.config.fs_env,
            MONGO_URI=self.mongo_uri,
            MONGO_DB=f"{self.config.db_prefix}_{name}",
            AMQP_URI=self.config.amqp_uri,
            INTERNAL_JWKS=str(self.jwks_path),
            SERVICE_URLS=self.service_urls(),
            VALIDATE_RESPONSES="1" if self.config.validate_responses else "0",
            WEB_CONCURRENCY=str(self.config.web_concurrency),
            GATEWAY_KEYS_DIR=str(self.keys_dir),
            DEMO_PEOPLE_FILE=str(self.config.people_file),
            ADVERTISE_URL=self.url(name),
            PYTHONUNBUFFERED="1",
            TIMELINE_STORY_SOURCES=story_sources(),
        )
        env.update(self.config.extra_env)
        return env

    # --- lifecycle --------------------------------------------------------------------
    def _keys(self) -> None:
        if not list(self.keys_dir.glob("*.pem")):
            generate_key(self.keys_dir)
        self.jwks_path.write_text(json.dumps(jwks_of(load_signing_keys(self.keys_dir))))

    def _declare(self) -> None:
        for spec in SERVICES:
            if spec.worker:
                done = subprocess.run([sys.executable, "-m", "chassis.runworker", spec.worker, "declare"],
                                      env=self.env_for(spec.name), capture_output=True, text=True, timeout=120)
                if done.returncode != 0:
                    raise NotReady(f"declaring {spec.name}'s queues failed: {done.stderr.strip()[-800:]}")

    def _web(self, spec: ServiceSpec) -> Proc:
        env = self.env_for(spec.name)
        env["BIND"] = f"127.0.0.1:{self.ports[spec.name]}"
        argv = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), spec.web]
        return Proc(f"{spec.name}-web", argv, env, self.logs / f"{spec.name}-web.log", cwd=ROOT).start()

    def _worker(self, spec: ServiceSpec) -> Proc:
        argv = [sys.executable, "-m", "chassis.runworker", spec.worker or ""]
        return Proc(f"{spec.name}-worker", argv, self.env_for(spec.name), self.logs / f"{spec.name}-worker.log",
                    cwd=ROOT).start()

    def start(self) -> Platform:
        self.config.var_dir.mkdir(parents=True, exist_ok=True)
        self._keys()
        if not self.mongo_uri:
            port = free_port()
            storage = self.config.mongo_storage
            if storage != ":memory:":
                Path(storage).mkdir(parents=True, exist_ok=True)
            self.mongo_proc = start_mongo_compatible(port, storage, self.logs / "secantus.log")
            self.mongo_uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
        ensure_rabbitmq(self.config.amqp_uri)
        self._declare()
        try:
            webs = [self._web(spec) for spec in (*SERVICES, GATEWAY)]
            self.procs.extend(webs)
            for spec, proc in zip((*SERVICES, GATEWAY), webs):
                wait_until(lambda s=spec: http_ok(self.url(s.name) + "/health"), 90, f"{spec.name} web",
                           alive=proc.alive)
            for spec in SERVICES:
                if spec.worker:
                    proc = self._worker(spec)
                    self.procs.append(proc)
                    wait_until(lambda p=proc, n=spec.name: f"worker {n} started" in p.tail(200), 90,
                               f"{spec.name} worker", alive=proc.alive)
        except Exception:
            for proc in self.procs:
                if not proc.alive():
                    sys.stderr.write(f"--- {proc.name} log ---\n{proc.tail()}\n")
            self.stop()
            raise
        return self

    def proc(self, name: str) -> Proc:
        return next(p for p in self.procs if p.name == name)

    def stop(self) -> None:
        # workers first (they drain in-flight events), then the web processes, each group in parallel
        for group in ([p for p in self.procs if p.name.endswith("-worker")],
                      [p for p in self.procs if not p.name.endswith("-worker")]):
            for proc in group:
                proc.terminate()
            for proc in group:
                proc.stop()
        self.procs.clear()
        if self.mongo_proc:
            self.mongo_proc.stop()
            self.mongo_proc = None

    def __enter__(self) -> Platform:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
