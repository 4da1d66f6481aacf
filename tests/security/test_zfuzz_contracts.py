"""Contract fuzzing with schemathesis: every operation of every service's contract, straight at the
service's port with a freshly minted internal token, and the gateway's own operations, as each main
role (parent, social worker, council admin). Checks: no server error (5xx), every response conforms
to the contract (status code, content type, headers, body schema).

``make test``: at least FUZZ_EXAMPLES (default 100) examples per operation, the roles taking turns.
``make fuzz``: FUZZ_EXAMPLES=500 FUZZ_EACH_ROLE=1 (every role gets that many examples of every operation).
Runs last in the security suite (file name): it writes random data through every operation.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import Counter

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from secworld import CONTRACTS

from chassis.identity import Identity
from chassis.testing import report as report_figure
from chassis.tokens import TokenMinter, load_signing_keys

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
EACH_ROLE = os.environ.get("FUZZ_EACH_ROLE", "") not in ("", "0")
SERVICES = ("cases", "catalogue", "timeline", "documents", "messaging", "plans", "referrals")
ROLES = {
    "parent": Identity(subject="pat", actor="person", council_id="council-a", audience="families",
                       cases={"case-1": "parent"}),
    "social_worker": Identity(subject="sw1", actor="person", council_id="council-a", audience="staff",
                              roles=frozenset({"social_worker"}), cases={"case-1": "social_worker"}),
    "council_admin": Identity(subject="adm-a", actor="person", council_id="council-a", audience="staff",
                              roles=frozenset({"council_admin"})),
}
ROLE_LOGINS = {"parent": "parent1.a", "social_worker": "worker.a", "council_admin": "admin.a"}
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance,
          response_headers_conformance]
# gateway operations not fuzzed: the proxy routes are the services' contracts (fuzzed at the services);
# signing out would end the fuzzing session itself
GATEWAY_SKIP = {"gateway.api.delete_session", "gateway.signin_api.delete_session"} | {f"gateway.api.proxied_{t}_{m}" for t in ("tool", "catalogue", "cases")
                                                 for m in ("get", "post", "put", "patch", "delete")}
TOTALS: Counter = Counter()
_lock = threading.Lock()


def fuzz_operation(operation, base_url: str, headers_for, roles: list[str], failures: list[str]) -> int:
    """Runs EXAMPLES examples (per role when EACH_ROLE) of one operation; returns how many were sent."""
    target = EXAMPLES * (len(roles) if EACH_ROLE else 1)
    turn = itertools.cycle(roles)
    sent = 0
    http = requests.Session()

    @settings(max_examples=target, deadline=None, database=None, derandomize=False,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck), verbosity=hypothesis.Verbosity.quiet)
    @given(case=operation.as_strategy())
    def run(case):
        nonlocal sent
        role = next(turn)
        sent += 1
        try:
            case.call_and_validate(base_url=base_url, session=http, headers=headers_for(role), checks=CHECKS)
        except Exception as exc:
            failures.append(f"{operation.label} as {role}: {type(exc).__name__}: {str(exc)[:600]}")
            if len(failures) > 20:
                raise

    # an operation with a small input space makes hypothesis stop early: go again until the count is reached
    rounds = 0
    while sent < target and rounds < target:
        rounds += 1
        try:
            run()
        except Exception:
            break
    http.close()
    return sent


def fuzz_schema(path, base_url: str, headers_for, roles: list[str], skip=frozenset()) -> tuple[dict, list[str]]:
    schema = schemathesis.openapi.from_path(str(path))
    counts, failures = {}, []
    for result in schema.get_all_operations():
        operation = result.ok()
        oid = operation.definition.raw.get("operationId")
        if oid in skip:
            continue
        counts[operation.label] = fuzz_operation(operation, base_url, headers_for, roles, failures)
    return counts, failures


def report(name: str, counts: dict, failures: list[str]) -> None:
    with _lock:
        TOTALS["operations"] += len(counts)
        TOTALS["examples"] += sum(counts.values())
    low = {k: v for k, v in counts.items() if v < EXAMPLES}
    report_figure(f"fuzz {name}: {len(counts)} operations, {sum(counts.values())} examples "
          f"(min {min(counts.values(), default=0)} per operation, {'each' if EACH_ROLE else 'taking turns'}: "
          f"{', '.join(ROLES)}); {len(failures)} failures; running total {TOTALS['examples']} examples over "
          f"{TOTALS['operations']} operations")
    assert not failures, "\n\n".join(failures[:10])
    assert not low, f"operations with fewer than {EXAMPLES} examples: {low}"


@pytest.mark.parametrize("service", SERVICES)
def test_fuzz_service_contract(service, platform, planted):
    minter = TokenMinter(load_signing_keys(platform.keys_dir), issuer="family-story-gateway", lifetime=60)

    def headers_for(role: str) -> dict:
        return {"Authorization": "Bearer " + minter.mint(service, ROLES[role].to_claims())}

    counts, failures = fuzz_schema(CONTRACTS / f"{service}.yaml", platform.url(service), headers_for, list(ROLES))
    report(service, counts, failures)


def test_fuzz_gateway_contract(platform, client, planted):
    tokens = {role: client.sign_in(login).token for role, login in ROLE_LOGINS.items()}

    def headers_for(role: str) -> dict:
        return {"Authorization": "Bearer " + tokens[role]}

    counts, failures = fuzz_schema(CONTRACTS / "gateway.yaml", platform.gateway_url, headers_for, list(ROLES),
                                   skip=GATEWAY_SKIP)
    report("gateway", counts, failures)
