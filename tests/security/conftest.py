"""Fixtures of the security suites: the running platform of tests/conftest.py, every tool switched on in
both councils, and records with unique markers planted in every tool for each object of the matrix."""

from __future__ import annotations

import pytest
from secworld import plant, switch_everything_on

from chassis.testing import report


@pytest.fixture(scope="session")
def planted(platform, client, sessions, world):
    switch_everything_on(client, sessions, world)
    admin = sessions(world.admin_login("council-a"))
    planted = plant(sessions, world)
    # what the referral settings are now: the matrix's council-admin writes put back exactly this
    planted.settings = {
        "services": admin.ok("GET", "/api/tools/referrals/settings/services").json(),
        "script": admin.ok("GET", "/api/tools/referrals/settings/conversation-script").json(),
        "sign_in": admin.ok("GET", "/api/catalogue/councils/council-a/sign-in").json(),
    }
    report(f"planted {len(planted.records)} records with unique markers "
          f"({len({(r.tool, r.obj) for r in planted.records})} tool x object pairs)")
    return planted
