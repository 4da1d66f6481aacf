"""The demo world of ``make run``: three councils, their people, a family's case
with a believable story, and different tools switched on in each council."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from fsclient import FamilyStoryClient
from world import Case, Person, World, with_platform_people

KC, WM, HF = "kensington-chelsea", "westminster", "hammersmith-fulham"
COUNCILS = {KC: "Royal Borough of Kensington and Chelsea", WM: "Westminster City Council",
            HF: "London Borough of Hammersmith and Fulham"}

PEOPLE = [
    # Kensington and Chelsea: the Okafor family and the people around them
    Person("sam.okafor", "kc-sam-okafor", KC, "Sam Okafor", "family"),
    Person("jordan.okafor", "kc-jordan-okafor", KC, "Jordan Okafor", "family"),
    Person("maya.okafor", "kc-maya-okafor", KC, "Maya Okafor", "young_person"),
    Person("grace.mensah", "kc-grace-mensah", KC, "Grace Mensah", "family"),
    Person("priya.shah", "kc-priya-shah", KC, "Priya Shah", "staff", ("social_worker",)),
    Person("daniel.reed", "kc-daniel-reed", KC, "Daniel Reed", "staff", ("manager",)),
    Person("helen.ward", "kc-helen-ward", KC, "Helen Ward", "staff", ("council_admin",)),
    Person("lee.clarke", "kc-lee-clarke", KC, "Lee Clarke", "family"),
    Person("aisha.khan", "kc-aisha-khan", KC, "Aisha Khan", "young_person"),
    Person("ben.adeyemi", "kc-ben-adeyemi", KC, "Ben Adeyemi", "staff", ("social_worker",)),
    # Westminster
    Person("tom.bennett", "wm-tom-bennett", WM, "Tom Bennett", "staff", ("social_worker",)),
    Person("chris.evans", "wm-chris-evans", WM, "Chris Evans", "family"),
    Person("rita.lowe", "wm-rita-lowe", WM, "Rita Lowe", "staff", ("council_admin",)),
    # Hammersmith and Fulham
    Person("nadia.ali", "hf-nadia-ali", HF, "Nadia Ali", "staff", ("social_worker",)),
    Person("kim.ford", "hf-kim-ford", HF, "Kim Ford", "family"),
    Person("omar.farouk", "hf-omar-farouk", HF, "Omar Farouk", "staff", ("council_admin",)),
]

CASES = [
    Case("kc-okafor", KC, "CP-2026-0142", "Okafor family",
         {"kc-sam-okafor": "parent", "kc-jordan-okafor": "parent", "kc-maya-okafor": "child",
          "kc-grace-mensah": "carer", "kc-priya-shah": "social_worker", "kc-daniel-reed": "manager"}),
    Case("kc-clarke", KC, "CIN-2026-0388", "Clarke family",
         {"kc-lee-clarke": "parent", "kc-ben-adeyemi": "social_worker"}),
    Case("kc-aisha-pathway", KC, "LC-2026-0051", "Aisha's pathway",
         {"kc-aisha-khan": "young_person", "kc-ben-adeyemi": "social_worker"}),
    Case("wm-evans", WM, "CIN-2026-1107", "Evans family",
         {"wm-chris-evans": "parent", "wm-tom-bennett": "social_worker"}),
    Case("hf-ford", HF, "EH-2026-0733", "Ford family",
         {"hf-kim-ford": "parent", "hf-nadia-ali": "social_worker"}),
]

ENABLED = {
    KC: {"timeline": ["families", "young_people", "staff"]},
    WM: {"timeline": ["staff"]},
    HF: {},
}

WHO_IS_WHO = {
    "sam.okafor": "parent, Okafor family (Kensington and Chelsea)",
    "jordan.okafor": "parent, Okafor family; excluded from Maya's placement address",
    "maya.okafor": "Maya, 15, Okafor family",
    "grace.mensah": "kinship carer (Maya's aunt), Okafor family",
    "priya.shah": "social worker for the Okafor family",
    "daniel.reed": "team manager, Okafor family",
    "helen.ward": "council administrator, Kensington and Chelsea",
    "aisha.khan": "care leaver, 18, pathway plan",
    "chris.evans": "parent, Westminster (timeline on for staff only)",
    "tom.bennett": "social worker, Westminster",
    "kim.ford": "parent, Hammersmith and Fulham (no tools switched on)",
    "operator": "platform operator",
}


def demo_world() -> World:
    return World(COUNCILS, with_platform_people(COUNCILS, PEOPLE), CASES, ENABLED)


def _ago(days: int, hour: int = 10) -> str:
    day = datetime.now(timezone.utc).replace(hour=hour, minute=0, second=0, microsecond=0) - timedelta(days=days)
    return day.isoformat()


STORY = [
    ("priya.shah", {"kind": "visit", "title": "First home visit",
                    "body": "I visited Sam, Jordan and Maya at home. We talked about what worries the school has "
                            "raised and what support would help. Maya showed me her room and her drawings.",
                    "occurred_at": _ago(84)}),
    ("priya.shah", {"kind": "meeting", "title": "Initial child protection conference",
                    "body": "Everyone agreed Maya needs a child protection plan under the category of neglect. "
                            "The plan will be reviewed in three months. Sam and Jordan attended with an advocate.",
                    "occurred_at": _ago(70)}),
    ("priya.shah", {"kind": "note", "title": "Supervision notes",
                    "body": "Discussed risk analysis with Daniel. Staff only.",
                    "occurred_at": _ago(60), "audience": {"kind": "staff", "people": [], "exclude": []}}),
    ("priya.shah", {"kind": "court_outcome", "title": "Interim care order: Maya to stay with her aunt Grace",
                    "body": "The family court made an interim order. Maya will live with her aunt, Grace, while "
                            "the assessments are done. Contact with Sam and Jordan continues, supervised, twice a week.",
                    "occurred_at": _ago(41)}),
    ("priya.shah", {"kind": "decision", "title": "Maya's new school and address",
                    "body": "Maya has started at her new school near Grace's home. The address is on her file.",
                    "occurred_at": _ago(35),
                    "audience": {"kind": "case", "people": [], "exclude": ["kc-jordan-okafor"]}}),
    ("priya.shah", {"kind": "recommendation", "title": "Recommendation: parenting programme for Sam and Jordan",
                    "body": "I recommend Sam and Jordan join the 12-week Triple P programme starting next month.",
                    "occurred_at": _ago(20)}),
    ("sam.okafor", {"kind": "family_note", "title": "Our side of the story",
                    "body": "We have been going to every contact session. Maya told us she likes her new school. "
                            "We want the report to say how hard we are working.",
                    "occurred_at": _ago(12)}),
    ("priya.shah", {"kind": "visit", "title": "Visit to Maya at Grace's",
                    "body": "Maya is settled and doing her homework with Grace each evening.",
                    "occurred_at": _ago(5)}),
    ("priya.shah", {"kind": "meeting", "title": "Next: review child protection conference",
                    "body": "The review conference is booked at the Town Hall. You can bring someone with you.",
                    "occurred_at": _ago(-14)}),
]


def seed_story(client: FamilyStoryClient) -> int:
    """The Okafor family's timeline; skipped when it is already there (a second ``make run``)."""
    priya = client.sign_in("priya.shah")
    path = "/api/tools/timeline/cases/kc-okafor/entries"
    existing = priya.ok("GET", path, params={"limit": 100}).json()["items"]
    if any(e.get("author") for e in existing):
        return 0
    sessions = {"priya.shah": priya}
    made = 0
    for login, entry in STORY:
        session = sessions.setdefault(login, client.sign_in(login))
        created = session.ok("POST", path, json=entry).json()
        made += 1
        if entry["kind"] == "recommendation":
            sam = sessions.setdefault("sam.okafor", client.sign_in("sam.okafor"))
            sam.ok("POST", f"{path}/{created['entry_id']}/comments",
                   json={"body": "We are happy to do this. Can it be in the evenings because of work?"})
    return made
