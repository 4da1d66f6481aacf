"""connexion handlers for contracts/cases.yaml: parse, call the directory, shape the answer."""

from __future__ import annotations

from flask import Response

from chassis import subject_access
from chassis.subject_access import Source
from chassis.web import caller, resource

from .domain import CaseDirectory
from .schemas import (
    case_member_out,
    case_out,
    case_role_out,
    membership_out,
    my_case_out,
    person_out,
)


def _directory() -> CaseDirectory:
    return resource("directory")


JSON = {"Content-Type": "application/json"}  # operations also declare problem+json: name the one we send


def _created(created: bool) -> int:
    return 201 if created else 200


def put_person(person_id: str, body: dict):
    person, created = _directory().put_person(caller(), person_id, body["display_name"], body["kind"])
    return person_out.dump(person), _created(created), JSON


def get_person(person_id: str):
    return person_out.dump(_directory().get_person(caller(), person_id)), 200, JSON


def get_memberships(person_id: str):
    return {"items": case_role_out.dump(_directory().memberships(caller(), person_id))}, 200, JSON


def put_case(case_id: str, body: dict):
    case, created = _directory().put_case(caller(), case_id, body["reference"], body["title"])
    return case_out.dump(case), _created(created), JSON


def get_case(case_id: str):
    case, members = _directory().get_case(caller(), case_id)
    return {**case_out.dump(case), "members": case_member_out.dump(members, many=True)}, 200, JSON


def put_member(case_id: str, person_id: str, body: dict):
    membership, created = _directory().put_member(caller(), case_id, person_id, body["role"])
    return membership_out.dump(membership), _created(created), JSON


def remove_member(case_id: str, person_id: str):
    _directory().remove_member(caller(), case_id, person_id)
    response = Response(status=204)
    del response.headers["Content-Type"]  # no body, so no content type
    return response


def my_cases():
    return {"items": my_case_out.dump(_directory().my_cases(caller()))}, 200, JSON


# --- subject access (chassis.subject_access): what the case directory holds about one person ------
def _export_sources() -> list[Source]:
    return [
        Source("people", "person", "person_id", "updated_at", about_fields=("person_id",), case_field=None),
        Source("memberships", "case membership", "case_id", "added_at", about_fields=("person_id",),
               case_field=None),
    ]


def export_person(person_id: str):
    return subject_access.export_person(person_id, _export_sources())
