"""Unit tests of the case directory's rules, against an in-memory store."""

from datetime import UTC, datetime

import pytest
from cases_fakes import FakeCaseStore
from cases_identities import COUNCIL_A, COUNCIL_B, admin, gateway, machine, person

from cases.domain import (
    CASE_ROLES,
    PERSON_KINDS,
    CaseDirectory,
    may_read_person,
    may_write_directory,
    role_suits_kind,
)
from chassis.problems import Conflict, Forbidden, NotFound, Unprocessable

OPENED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

SUITABLE = {
    ("family", "parent"), ("family", "carer"), ("family", "child"),
    ("young_person", "young_person"), ("young_person", "child"),
    ("staff", "social_worker"), ("staff", "manager"),
}


@pytest.fixture
def store():
    return FakeCaseStore()


@pytest.fixture
def directory(store):
    return CaseDirectory(store, clock=lambda: OPENED)


@pytest.fixture
def seeded(directory):
    """Council A: case c1 with parent p1 and manager m1; p2 (family) and sw1 (staff) not on it."""
    system = machine()
    directory.put_person(system, "p1", "Alex Parent", "family")
    directory.put_person(system, "p2", "Sam Other", "family")
    directory.put_person(system, "m1", "Morgan Manager", "staff")
    directory.put_person(system, "sw1", "Jo Worker", "staff")
    directory.put_case(system, "c1", "REF-1", "The Parent family")
    directory.put_member(system, "c1", "p1", "parent")
    directory.put_member(system, "c1", "m1", "manager")
    return directory


def events(store, event_type=None):
    return [e for e in store.state.outbox if event_type is None or e["type"] == event_type]


class TestRoleSuitsKind:
    @pytest.mark.parametrize("kind", PERSON_KINDS)
    @pytest.mark.parametrize("role", CASE_ROLES)
    def test_each_kind_holds_only_its_own_roles(self, kind, role):
        assert role_suits_kind(role, kind) is ((kind, role) in SUITABLE)

    def test_unknown_kind_holds_no_role(self):
        assert not role_suits_kind("parent", "robot")


class TestWhoMayWrite:
    @pytest.mark.parametrize("who, allowed", [
        (machine(), True),
        (machine(scopes=("cases:read",)), False),
        (machine(scopes=()), False),
        (machine(council=None), False),
        (admin(), True),
        (admin(council=None), False),
        (person("sw1", audience="staff", roles=("social_worker",)), False),
        (person("m1", audience="staff", roles=("manager",)), False),
        (person("p1"), False),
        (gateway(), False),
        (person("op", council=None, audience="staff", roles=("platform_operator",)), False),
    ])
    def test_only_writing_machines_and_council_admins_change_the_directory(self, who, allowed):
        assert may_write_directory(who) is allowed

    @pytest.mark.parametrize("who, allowed", [
        (machine(scopes=("cases:read",)), True),
        (machine(), True),
        (machine(scopes=("timeline:read",)), False),
        (person("sw1", audience="staff"), True),
        (person("p1"), True),
        (person("p2"), False),
        (gateway(), False),
        (person("sw1", council=None, audience="staff"), False),
    ])
    def test_person_is_read_by_staff_reading_machines_and_themself(self, who, allowed):
        assert may_read_person(who, "p1") is allowed


class TestPutPerson:
    def test_first_put_creates_and_second_updates(self, directory, store):
        person_, created = directory.put_person(machine(), "p1", "Alex", "family")
        assert created and person_.display_name == "Alex"
        person_, created = directory.put_person(machine(), "p1", "Alex P", "family")
        assert not created and store.state.people[(COUNCIL_A, "p1")].display_name == "Alex P"

    def test_family_member_may_not_push_people(self, directory, store):
        with pytest.raises(Forbidden):
            directory.put_person(person("p1"), "p9", "Someone", "family")
        assert store.state.people == {}
        assert store.state.audit[-1]["outcome"] == "forbidden"

    def test_same_id_in_two_councils_is_two_people(self, directory, store):
        directory.put_person(machine(), "p1", "Alex", "family")
        _, created = directory.put_person(machine(council=COUNCIL_B), "p1", "Bea", "staff")
        assert created
        assert store.state.people[(COUNCIL_A, "p1")].display_name == "Alex"

    def test_changing_kind_against_held_roles_is_a_conflict(self, seeded, store):
        before = store.state.people[(COUNCIL_A, "p1")]
        with pytest.raises(Conflict):
            seeded.put_person(machine(), "p1", "Alex Parent", "staff")
        assert store.state.people[(COUNCIL_A, "p1")] == before

    def test_changing_kind_compatible_with_held_roles_is_allowed(self, seeded, directory, store):
        seeded.put_member(machine(), "c1", "p2", "child")
        _, created = seeded.put_person(machine(), "p2", "Sam Other", "young_person")
        assert not created and store.state.people[(COUNCIL_A, "p2")].kind == "young_person"

    def test_unknown_kind_is_unprocessable(self, directory):
        with pytest.raises(Unprocessable):
            directory.put_person(machine(), "p1", "Alex", "robot")


class TestPutCase:
    def test_opening_a_case_publishes_case_opened_once(self, directory, store):
        case, created = directory.put_case(admin(), "c1", "REF", "Title")
        assert created and case.opened_at == OPENED
        directory.put_case(admin(), "c1", "REF", "New title")
        assert [e["data"] for e in events(store, "case_opened")] == [{"case_id": "c1"}]
        assert store.state.cases[(COUNCIL_A, "c1")].title == "New title"

    def test_update_keeps_opened_at(self, directory, store):
        directory.put_case(machine(), "c1", "REF", "Title")
        later = CaseDirectory(store, clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))
        case, _ = later.put_case(machine(), "c1", "REF", "Title 2")
        assert case.opened_at == OPENED

    def test_social_worker_may_not_open_cases(self, directory, store):
        with pytest.raises(Forbidden):
            directory.put_case(person("sw1", audience="staff", roles=("social_worker",)), "c1", "R", "T")
        assert store.state.cases == {} and store.state.outbox == []


class TestPutMember:
    def test_adding_publishes_member_added_with_the_story(self, seeded, store):
        added = events(store, "member_added")[0]
        assert added["data"] == {"case_id": "c1", "person_id": "p1", "role": "parent"}
        assert added["story"] == {
            "case_id": "c1", "kind": "membership", "title": "Alex Parent joined the case as a parent",
            "occurred_at": OPENED.isoformat(), "audience": {"kind": "case", "people": [], "exclude": []},
        }

    def test_same_role_again_changes_nothing_and_publishes_nothing(self, seeded, store):
        before = len(store.state.outbox)
        membership, created = seeded.put_member(machine(), "c1", "p1", "parent")
        assert not created and membership.role == "parent"
        assert len(store.state.outbox) == before

    def test_role_change_publishes_once(self, seeded, store):
        before = len(store.state.outbox)
        _, created = seeded.put_member(machine(), "c1", "p1", "carer")
        assert not created
        assert [e["data"]["role"] for e in store.state.outbox[before:]] == ["carer"]

    @pytest.mark.parametrize("person_id, role", [("p2", "social_worker"), ("sw1", "parent"), ("p2", "young_person")])
    def test_role_unsuited_to_kind_is_unprocessable(self, seeded, store, person_id, role):
        before = copy_state(store)
        with pytest.raises(Unprocessable):
            seeded.put_member(machine(), "c1", person_id, role)
        assert copy_state(store) == before

    def test_unknown_person_or_case_is_not_found(self, seeded):
        with pytest.raises(NotFound):
            seeded.put_member(machine(), "c1", "nobody", "parent")
        with pytest.raises(NotFound):
            seeded.put_member(machine(), "nocase", "p2", "parent")

    def test_other_councils_case_is_not_found_even_for_its_admin(self, seeded):
        with pytest.raises(NotFound):
            seeded.put_member(admin(council=COUNCIL_B), "c1", "p1", "parent")

    def test_manager_on_the_case_may_add_members(self, seeded):
        _, created = seeded.put_member(person("m1", audience="staff"), "c1", "sw1", "social_worker")
        assert created

    def test_parent_on_the_case_is_forbidden(self, seeded):
        with pytest.raises(Forbidden):
            seeded.put_member(person("p1"), "c1", "p2", "parent")

    def test_manager_claimed_only_in_the_token_is_not_found(self, seeded):
        with pytest.raises(NotFound):
            seeded.put_member(person("sw1", audience="staff", cases={"c1": "manager"}), "c1", "p2", "parent")

    def test_machine_without_write_scope_is_forbidden(self, seeded):
        with pytest.raises(Forbidden):
            seeded.put_member(machine(scopes=("cases:read",)), "c1", "p2", "parent")


class TestRemoveMember:
    def test_removal_publishes_staff_only_story(self, seeded, store):
        seeded.remove_member(machine(), "c1", "p1")
        removed = events(store, "member_removed")
        assert [e["data"] for e in removed] == [{"case_id": "c1", "person_id": "p1", "role": "parent"}]
        assert removed[0]["story"]["title"] == "Alex Parent is no longer on the case"
        assert removed[0]["story"]["audience"] == {"kind": "staff", "people": [], "exclude": []}
        assert (COUNCIL_A, "c1", "p1") not in store.state.memberships

    def test_removing_a_non_member_is_not_found(self, seeded, store):
        with pytest.raises(NotFound):
            seeded.remove_member(machine(), "c1", "p2")
        assert events(store, "member_removed") == []


class TestReads:
    def test_member_reads_case_with_members(self, seeded):
        case, members = seeded.get_case(person("p1"), "c1")
        assert case.reference == "REF-1"
        assert [(m.person_id, m.display_name, m.role) for m in members] == [
            ("m1", "Morgan Manager", "manager"), ("p1", "Alex Parent", "parent")]

    @pytest.mark.parametrize("who", [
        person("p2"), person("p2", cases={"c1": "parent"}), person("sw1", audience="staff", roles=("manager",)),
        admin(), machine(scopes=()), gateway(), person("p1", council=COUNCIL_B, cases={"c1": "parent"}),
    ])
    def test_non_members_get_not_found(self, seeded, store, who):
        with pytest.raises(NotFound):
            seeded.get_case(who, "c1")
        assert store.state.audit[-1]["outcome"] == "not-found"

    def test_reading_machine_reads_case(self, seeded):
        case, _ = seeded.get_case(machine(scopes=("cases:read",)), "c1")
        assert case.case_id == "c1"

    def test_my_cases_come_from_the_directory(self, seeded):
        mine = seeded.my_cases(person("p1", cases={"ghost": "parent"}))
        assert [(c.case_id, c.role) for c in mine] == [("c1", "parent")]
        assert seeded.my_cases(person("p1", council=COUNCIL_B)) == []

    def test_memberships_only_for_the_gateway(self, seeded):
        assert [(m.case_id, m.role) for m in seeded.memberships(gateway(), "p1")] == [("c1", "parent")]
        assert seeded.memberships(gateway(council=COUNCIL_B), "p1") == []
        for who in (person("p1"), machine(), admin()):
            with pytest.raises(NotFound):
                seeded.memberships(who, "p1")

    def test_every_read_is_audited(self, seeded, store):
        seeded.get_person(person("p1"), "p1")
        assert store.state.audit[-1] == {"actor": "p1", "council_id": COUNCIL_A, "action": "person.read",
                                         "case_id": None, "record_id": "p1", "outcome": "ok"}
        seeded.get_case(person("p1"), "c1")
        assert store.state.audit[-1]["action"] == "case.read" and store.state.audit[-1]["case_id"] == "c1"


def copy_state(store):
    s = store.state
    return (dict(s.people), dict(s.cases), dict(s.memberships), list(s.outbox))
