"""The demo world of ``make run``: three councils, their people, a family's case
with a believable story, and different tools switched on in each council."""

from __future__ import annotations

import time
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
    KC: {tool: ["families", "young_people", "staff"]
         for tool in ("timeline", "documents", "messaging", "referrals", "plans")},
    WM: {"timeline": ["staff"], "messaging": ["families", "staff"]},
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
    "chris.evans": "parent, Westminster (messaging on; timeline for staff only)",
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


def _tool_on(tool: str) -> bool:
    from world import FIRST_PARTY_TOOLS

    return tool in FIRST_PARTY_TOOLS


def seed_messages(client: FamilyStoryClient) -> int:
    """Sam and Priya talk about contact; Grace asks about school. Skipped if already there."""
    if not _tool_on("messaging"):
        return 0
    sam, priya, grace = (client.sign_in(x) for x in ("sam.okafor", "priya.shah", "grace.mensah"))
    threads = "/api/tools/messaging/cases/kc-okafor/threads"
    if priya.ok("GET", threads).json()["items"]:
        return 0
    t1 = sam.ok("POST", threads, json={
        "subject": "Contact on Saturday", "participants": ["kc-priya-shah"],
        "body": "Hi Priya, can we move Saturday's contact with Maya to the afternoon? Jordan is working until 12."}
    ).json()
    priya.ok("POST", f"{threads}/{t1['thread_id']}/read", json={})
    priya.ok("POST", f"{threads}/{t1['thread_id']}/messages", json={
        "body": "Hi Sam, yes, 2pm at the family centre works. I will let Grace know."})
    sam.ok("POST", f"{threads}/{t1['thread_id']}/messages", json={"body": "Thank you. Maya will be pleased."})
    t2 = grace.ok("POST", threads, json={
        "subject": "Maya's school trip", "participants": ["kc-priya-shah"],
        "body": "The school wants a signed form for the museum trip. Can I sign it, or does it need Sam?"}).json()
    return 2 + (1 if t2 else 0)


def seed_plans(client: FamilyStoryClient) -> int:
    """Aisha's pathway plan, published, with her comment and agreement."""
    if not _tool_on("plans"):
        return 0
    ben, aisha = client.sign_in("ben.adeyemi"), client.sign_in("aisha.khan")
    plans = "/api/tools/plans/cases/kc-aisha-pathway/plans"
    if ben.ok("GET", plans).json()["items"]:
        return 0
    plan = ben.ok("POST", plans, json={
        "kind": "pathway", "title": "Aisha's pathway plan", "subject_person_id": "kc-aisha-khan",
        "review_due": (datetime.now(timezone.utc) + timedelta(days=90)).date().isoformat(),
        "sections": [
            {"area": "accommodation", "goals": [{
                "title": "Move into my own flat", "description": "A one-bedroom flat near college.",
                "actions": [{"what": "Apply to the council's housing register", "who": {"role": "Personal adviser"},
                             "by_when": (datetime.now(timezone.utc) + timedelta(days=30)).date().isoformat()},
                            {"what": "Do the independent living course", "who": {"person_id": "kc-aisha-khan"},
                             "by_when": (datetime.now(timezone.utc) + timedelta(days=60)).date().isoformat()}]}]},
            {"area": "education_training_employment", "goals": [{
                "title": "Finish my level 3 in health and social care", "actions": []}]},
            {"area": "money", "goals": [{"title": "Set up a budget and a bank account", "actions": []}]},
        ]}).json()
    path = f"{plans}/{plan['plan_id']}"
    published = ben.ok("POST", f"{path}/publish").json()
    goal = published["published"]["sections"][0]["goals"][0]["goal_id"]
    aisha.ok("POST", f"{path}/goals/{goal}/comments", json={"body": "I would like to stay near my college friends."})
    aisha.ok("POST", f"{path}/versions/1/agreements", json={"agreed": True})
    return 1


def seed_referrals(client: FamilyStoryClient) -> int:
    """A referral to Early Help for Maya, submitted."""
    if not _tool_on("referrals"):
        return 0
    priya = client.sign_in("priya.shah")
    referrals = "/api/tools/referrals/cases/kc-okafor/referrals"
    if priya.ok("GET", referrals).json()["items"]:
        return 0
    form = {"subject_person_id": "kc-maya-okafor", "service": "CAMHS",
            "reasons": "Maya has told her carer she is not sleeping and feels sad most days.",
            "concerns": "Low mood since the move; missing some school days.", "urgency": "soon",
            "parents_informed": True, "parents_consented": True, "attachments": []}
    # referrals learns who is on a case from the case directory's events: on a fresh start they may
    # still be on their way, and the tool says so (422) until they arrive
    deadline = time.monotonic() + 60
    while (resp := priya.post(referrals, json=form)).status_code == 422 and time.monotonic() < deadline:
        time.sleep(0.2)
    if resp.status_code != 201:
        raise RuntimeError(f"demo referral not made: {resp.status_code} {resp.text[:200]}")
    made = resp.json()
    priya.ok("POST", f"{referrals}/{made['referral_id']}/submit")
    return 1


def _demo_pdf(title: str, lines: list[str]) -> bytes:
    """A small, valid one-page PDF with the given text."""
    text = " ".join(f"({line.replace('(', '[').replace(')', ']')}) Tj T*" for line in [title, "", *lines])
    stream = f"BT /F1 12 Tf 14 TL 72 760 Td {text} ET".encode()
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def seed_documents(client: FamilyStoryClient) -> int:
    """The child protection plan summary (everyone on the case) and Sam's letter to the conference."""
    if not _tool_on("documents"):
        return 0
    priya, sam = client.sign_in("priya.shah"), client.sign_in("sam.okafor")
    docs = "/api/tools/documents/cases/kc-okafor/documents"
    if priya.ok("GET", docs).json()["items"]:
        return 0
    octets = {"Content-Type": "application/octet-stream"}
    priya.ok("POST", docs, params={"filename": "Child protection plan summary.pdf", "audience": "case"},
             headers=octets, content=_demo_pdf("Child protection plan: summary", [
                 "Maya lives with her aunt Grace while the assessments are done.",
                 "Contact with Sam and Jordan: twice a week, supervised.",
                 "Next review conference: in two weeks, at the Town Hall."]))
    sam.ok("POST", docs, params={"filename": "Letter to the conference.txt", "audience": "case"}, headers=octets,
           content=b"To the conference chair,\n\nWe have been to every contact session and we have started the "
                   b"parenting course. We would like more time with Maya at weekends.\n\nSam Okafor\n")
    return 2
