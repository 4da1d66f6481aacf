import json

import pytest
from gateway_fakes import FakeCases, FakeCatalogue, MemorySessionStore, make_tool

from chassis.config import Settings
from gateway.app import create_app

KC = "kensington-chelsea"
OTHER = "hammersmith"

DEMO_PEOPLE = {"people": [
    {"login": "sam.parent.kc", "person_id": "p-sam", "council_id": KC, "display_name": "Sam Parent",
     "kind": "family", "roles": [], "scopes": []},
    {"login": "jo.young.kc", "person_id": "p-jo", "council_id": KC, "display_name": "Jo",
     "kind": "young_person", "roles": [], "scopes": []},
    {"login": "alex.sw.kc", "person_id": "p-alex", "council_id": KC, "display_name": "Alex Worker",
     "kind": "staff", "roles": ["social_worker"], "scopes": []},
    {"login": "olu.ops", "person_id": "p-olu", "council_id": None, "display_name": "Olu Operator",
     "kind": "operator", "roles": ["platform_operator"], "scopes": []},
    {"login": "mosaic.kc", "person_id": "m-mosaic", "council_id": KC, "display_name": "Mosaic",
     "kind": "machine", "roles": [], "scopes": ["cases:write"]},
    {"login": "hf.parent", "person_id": "p-hf", "council_id": OTHER, "display_name": "Other Parent",
     "kind": "family", "roles": [], "scopes": []},
]}


@pytest.fixture
def people_file(tmp_path):
    path = tmp_path / "people.json"
    path.write_text(json.dumps(DEMO_PEOPLE))
    return str(path)


@pytest.fixture
def catalogue():
    return FakeCatalogue({
        KC: [make_tool(),
             make_tool(tool_id="plans", name="Plans", service="plans", audiences={"young_people", "staff"})],
        OTHER: [make_tool(tool_id="plans", name="Plans", service="plans", audiences={"families"})],
    })


@pytest.fixture
def cases():
    return FakeCases({(KC, "p-sam"): {"case-1": "parent"}, (KC, "p-alex"): {"case-1": "social_worker",
                                                                             "case-2": "manager"}})


@pytest.fixture
def gateway_settings(tmp_path, people_file):
    def build(**overrides):
        extra = {"GATEWAY_KEYS_DIR": str(tmp_path / "keys"), "DEMO_PEOPLE_FILE": people_file,
                 **overrides.pop("extra", {})}
        fields = dict(service_name="gateway", validate_responses=True, extra=extra,
                      service_urls={"timeline": "http://127.0.0.1:9", "plans": "http://127.0.0.1:9",
                                    "cases": "http://127.0.0.1:9", "catalogue": "http://127.0.0.1:9"})
        fields.update(overrides)
        return Settings(**fields)

    return build


@pytest.fixture
def make_app(gateway_settings, catalogue, cases):
    def build(**overrides):
        settings = overrides.pop("settings", None) or gateway_settings(**overrides.pop("settings_overrides", {}))
        return create_app(settings, session_store=overrides.pop("session_store", MemorySessionStore()),
                          catalogue=catalogue, cases=cases, listen_to_events=False, **overrides)

    return build
