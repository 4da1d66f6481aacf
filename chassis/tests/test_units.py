"""Unit tests of the chassis' small parts: configuration, discovery, paging, problems."""

from datetime import datetime, timezone

import pytest

from chassis.config import Settings, parse_service_urls
from chassis.discovery import ConsulDiscovery, ServiceNotFound, StaticDiscovery, discovery_for, register
from chassis.paging import decode_cursor, encode_cursor, newest_first_filter
from chassis.problems import InvalidInput, NotFound, problem_body


class TestSettings:
    def test_defaults_name_the_services_own_database(self):
        s = Settings.from_env("timeline", environ={})
        assert s.mongo_db == "family_story_timeline" and s.max_body_bytes == 65536 and not s.production

    def test_environment_overrides_and_extra_keys_are_kept(self):
        s = Settings.from_env("timeline", environ={"FS_ENV": "production", "MAX_BODY_BYTES": "10",
                                                   "TIMELINE_STORY_SOURCES": "a.b"})
        assert s.production and s.max_body_bytes == 10 and s.get("TIMELINE_STORY_SOURCES") == "a.b"

    def test_service_urls_parse_and_reject_malformed(self):
        assert parse_service_urls("a=http://x:1/, b=http://y:2") == {"a": "http://x:1", "b": "http://y:2"}
        with pytest.raises(ValueError):
            parse_service_urls("a")


class FakeConsulHealth:
    def __init__(self, entries):
        self.entries = entries
        self.calls = 0

    def service(self, name, passing):
        assert passing is True
        self.calls += 1
        return 1, self.entries.get(name, [])


class FakeConsulAgentService:
    def __init__(self):
        self.registered = []

    def register(self, name, **kw):
        self.registered.append((name, kw))


class FakeConsul:
    """Stands in for py-consul's client object (a third-party client, not one of our servers)."""

    def __init__(self, entries):
        self.health = FakeConsulHealth(entries)
        self.agent = type("Agent", (), {"service": FakeConsulAgentService()})()


class TestDiscovery:
    def test_static_discovery_resolves_configured_names_only(self):
        d = StaticDiscovery({"timeline": "http://127.0.0.1:1"})
        assert d.resolve("timeline") == "http://127.0.0.1:1"
        with pytest.raises(ServiceNotFound):
            d.resolve("documents")

    def test_consul_discovery_round_robins_healthy_instances_and_caches(self):
        entries = {"timeline": [{"Service": {"Address": "10.0.0.5", "Port": 8000}, "Node": {"Address": "n1"}},
                                {"Service": {"Address": "", "Port": 8001}, "Node": {"Address": "10.0.0.6"}}]}
        fake = FakeConsul(entries)
        d = ConsulDiscovery("http://consul:8500", client=fake)
        got = {d.resolve("timeline") for _ in range(4)}
        assert got == {"http://10.0.0.5:8000", "http://10.0.0.6:8001"}
        assert fake.health.calls == 1
        with pytest.raises(ServiceNotFound):
            d.resolve("documents")

    def test_consul_is_used_only_when_its_address_is_set(self):
        assert isinstance(discovery_for(Settings.from_env("x", environ={})), StaticDiscovery)
        s = Settings.from_env("x", environ={"CONSUL_HTTP_ADDR": "http://127.0.0.1:8500"})
        assert isinstance(discovery_for(s), ConsulDiscovery)

    def test_registration_declares_an_http_health_check(self):
        fake = FakeConsul({})
        s = Settings.from_env("timeline", environ={"CONSUL_HTTP_ADDR": "http://c:8500",
                                                   "ADVERTISE_URL": "http://10.1.1.1:8103"})
        sid = register(s, client=fake)
        name, kw = fake.agent.service.registered[0]
        assert name == "timeline" and sid == "timeline-10.1.1.1-8103" and kw["port"] == 8103
        assert kw["check"]["http"] == "http://10.1.1.1:8103/health"


class TestPaging:
    def test_cursor_round_trips(self):
        when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        assert decode_cursor(encode_cursor(when, "e1")) == (when, "e1")

    @pytest.mark.parametrize("bad", ["!!", "bm90IGpzb24", "WzFd"])
    def test_foreign_cursor_is_invalid_input(self, bad):
        with pytest.raises(InvalidInput):
            decode_cursor(bad)

    def test_no_cursor_means_no_condition(self):
        assert newest_first_filter(None, "occurred_at") == {}


def test_problem_body_has_the_four_fields():
    body = problem_body(404, "No such entry.")
    assert set(body) == {"type", "title", "status", "detail"} and body["status"] == 404
    assert NotFound("x").status == 404
