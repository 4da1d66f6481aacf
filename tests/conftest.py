"""The end-to-end platform: every service and the gateway, started for the run on
this run's own databases and RabbitMQ virtual host, stopped after."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy" / "local"))

from fsclient import FamilyStoryClient  # noqa: E402
from platform_runner import Platform, PlatformConfig  # noqa: E402
from world import FIRST_PARTY_TOOLS, Case, Person, World, seed, with_platform_people  # noqa: E402

from chassis.devservers import create_vhost, delete_vhost, ensure_rabbitmq  # noqa: E402
from chassis.testing import BASE_AMQP_URI  # noqa: E402

A, B = "council-a", "council-b"
COUNCILS = {A: "Council A", B: "Council B"}

PEOPLE = [
    Person("parent1.a", "pat", A, "Pat Parent", "family"),
    Person("parent2.a", "alex", A, "Alex Parent", "family"),  # excluded from one entry
    Person("carer.a", "cam", A, "Cam Carer", "family"),
    Person("young.a", "yan", A, "Yan Young", "young_person"),
    Person("worker.a", "sw1", A, "Sasha Worker", "staff", ("social_worker",)),
    Person("manager.a", "mgr", A, "Morgan Manager", "staff", ("manager",)),
    Person("otherparent.a", "opa", A, "Other Parent", "family"),
    Person("otherworker.a", "sw2", A, "Other Worker", "staff", ("social_worker",)),
    Person("admin.a", "adm-a", A, "Ada Admin", "staff", ("council_admin",)),
    # council B reuses the same case id and a person id on purpose
    Person("parent.b", "pat", B, "Pat of B", "family"),
    Person("worker.b", "swb", B, "Bo Worker", "staff", ("social_worker",)),
    Person("admin.b", "adm-b", B, "Bea Admin", "staff", ("council_admin",)),
]

CASES = [
    Case("case-1", A, "A-1", "Family One",
         {"pat": "parent", "alex": "parent", "cam": "carer", "yan": "child", "sw1": "social_worker",
          "mgr": "manager"}),
    Case("case-2", A, "A-2", "Family Two", {"opa": "parent", "sw2": "social_worker"}),
    Case("case-1", B, "B-1", "Family of B", {"pat": "parent", "swb": "social_worker"}),
]


# vendor tools: machine clients of council A (the security matrix's "vendor tool with/without the scope");
# added after the platform people so that world.backoffice_login still finds the back-office system
VENDORS = [
    Person("vendor.with.a", "vendor-with-a", A, "Vendor tool with timeline:read", "machine", (), ("timeline:read",)),
    Person("vendor.without.a", "vendor-without-a", A, "Vendor tool without scopes", "machine"),
]


def e2e_world() -> World:
    # council A starts with nothing switched on: each tool's tests switch it on themselves;
    # council B has every tool on, to show that A's switches never affect B
    return World(COUNCILS, with_platform_people(COUNCILS, PEOPLE) + VENDORS, CASES,
                 {B: {tool: ["families", "young_people", "staff"] for tool in FIRST_PARTY_TOOLS}})


@pytest.fixture(scope="session")
def world() -> World:
    return e2e_world()


@pytest.fixture(scope="session")
def e2e_amqp_uri():
    """A virtual host of the platform's own: queues declared by the integration tests (other retry
    settings, say) must not meet the platform's."""
    ensure_rabbitmq(BASE_AMQP_URI)
    vhost = f"fs-e2e-{uuid.uuid4().hex[:10]}"
    yield create_vhost(BASE_AMQP_URI, vhost)
    delete_vhost(vhost)


@pytest.fixture(scope="session")
def platform(run_dir, mongo_uri, e2e_amqp_uri, world):
    config = PlatformConfig(
        var_dir=run_dir / "platform",
        amqp_uri=e2e_amqp_uri,
        people_file=world.write_people_file(run_dir / "platform" / "people.json"),
        mongo_uri=mongo_uri,
        db_prefix=f"e2e_{uuid.uuid4().hex[:6]}",
        validate_responses=True,
        web_concurrency=1,
        # the gateway's development notifier: invitation and reset codes, read by the sign-in tests
        extra_env={"NOTIFY_FILE": str(run_dir / "platform" / "notifications.jsonl")},
    )
    with Platform(config) as running:
        client = FamilyStoryClient(running.gateway_url)
        seed(client, world)
        client.close()
        yield running


@pytest.fixture(scope="session")
def client(platform):
    c = FamilyStoryClient(platform.gateway_url)
    yield c
    c.close()


@pytest.fixture(scope="session")
def sessions(client, world):
    """A signed-in session for every login of the world, made once."""
    cache: dict = {}

    def get(login: str):
        if login not in cache:
            cache[login] = client.sign_in(login)
        return cache[login]

    return get
