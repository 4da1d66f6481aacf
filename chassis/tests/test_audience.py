"""The audience rule in Python (``can_see``) and as a query (``audience_filter``) give the same answers.

Every role (and no role) against every audience kind, excluded or not, author
or not, against a real SecantusDB.
"""

import itertools

import pytest
from pymongo import MongoClient

from chassis.audience import Viewer, audience_filter, can_see, viewer_on
from chassis.identity import Identity
from chassis.problems import NotFound
from chassis.testing import unique_db

ME = "p-me"
OTHER = "p-other"
ROLES = ["parent", "carer", "child", "young_person", "social_worker", "manager", None]
KINDS = ["case", "staff", "named_listed", "named_not_listed"]
FLAGS = [False, True]


def audience(kind: str, excluded: bool) -> dict:
    people = {"named_listed": [ME, OTHER], "named_not_listed": [OTHER]}.get(kind, [])
    return {"kind": kind.split("_")[0], "people": people, "exclude": [ME] if excluded else []}


def doc_id(kind: str, excluded: bool, author: bool) -> str:
    return f"{kind}-{'excl' if excluded else 'in'}-{'own' if author else 'theirs'}"


def expected(role, kind, excluded, author) -> bool:
    """The rule written out longhand, to check both forms against."""
    if role is None:
        return False
    if author:
        return True
    if excluded:
        return False
    if role in ("social_worker", "manager"):
        return True
    return kind in ("case", "named_listed")


@pytest.fixture(scope="module")
def records(mongo_uri):
    client = MongoClient(mongo_uri)
    db = client[unique_db("audience")]
    docs = [{"_id": doc_id(k, e, a), "audience": audience(k, e), "note": {"audience": audience(k, e)},
             "author": {"person_id": ME if a else OTHER}, "by": ME if a else OTHER}
            for k, e, a in itertools.product(KINDS, FLAGS, FLAGS)]
    db["records"].insert_many(docs)
    yield db["records"]
    client.drop_database(db.name)
    client.close()


@pytest.mark.integration
@pytest.mark.parametrize("role,kind,excluded,author", list(itertools.product(ROLES, KINDS, FLAGS, FLAGS)))
def test_python_rule_and_mongo_filter_agree(records, role, kind, excluded, author):
    want = expected(role, kind, excluded, author)
    in_python = can_see(audience(kind, excluded), ME, role, author_id=ME if author else OTHER)
    _id = doc_id(kind, excluded, author)
    in_mongo = records.find_one({"_id": _id, **audience_filter(ME, role)}) is not None
    elsewhere = records.find_one({"_id": _id, **audience_filter(ME, role, field="note.audience",
                                                                   author_field="by")}) is not None
    assert in_python is want
    assert in_mongo is want
    assert elsewhere is want


@pytest.mark.integration
@pytest.mark.parametrize("role", ROLES)
def test_without_author_branch_nobody_is_the_author(records, role):
    seen = {d["_id"] for d in records.find(audience_filter(ME, role, author_field=None))}
    want = {doc_id(k, e, a) for k, e, a in itertools.product(KINDS, FLAGS, FLAGS)
            if can_see(audience(k, e), ME, role)}
    assert seen == want


def test_no_author_id_means_nobody_is_the_author():
    assert can_see(audience("staff", False), ME, "parent") is False
    assert can_see(audience("staff", False), ME, "parent", author_id=ME) is True


def test_viewer_on_gives_the_role_or_404():
    who = Identity(subject=ME, actor="person", council_id="c1", cases={"case-1": "parent", "case-2": "manager"})
    assert viewer_on(who, "case-1", "nope") == Viewer(person_id=ME, council_id="c1", role="parent")
    assert viewer_on(who, "case-1", "nope").is_family
    assert viewer_on(who, "case-2", "nope").is_staff
    for bad, case_id in [(who, "case-3"),
                         (Identity(subject=ME, actor="machine", council_id="c1", cases={"case-1": "parent"}), "case-1"),
                         (Identity(subject=ME, actor="person", council_id=None, cases={"case-1": "parent"}), "case-1"),
                         (Identity(subject=ME, actor="person", council_id="c1", cases={"case-1": "guest"}), "case-1")]:
        with pytest.raises(NotFound, match="nope"):
            viewer_on(bad, case_id, "nope")
