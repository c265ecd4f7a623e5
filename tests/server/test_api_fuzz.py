"""Schemathesis against the running server's OpenAPI spec: no request, however malformed, gets a 5xx.

Every operation is fuzzed three times: with no credential, as a signed-in supervisor and as a paired
device, so the handlers behind authentication are reached too, not only the 401 in front of them.
"""

from __future__ import annotations

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from sqlmodel import Session

from models.wire import DEVICE_PREFIX
from server.accounts.tables import Role
from server.campaigns.service import create_campaign
from tests import factories

EXAMPLES = int(os.environ.get("BEDCHECK_FUZZ_EXAMPLES", "10"))


@pytest.fixture
def fuzz_target(engine, live_server, tmp_path):
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=2, patients_per_ward=["a", "b"])
        factories.user(db, "fuzz-supervisor", Role.SUPERVISOR)
        factories.user(db, "fuzz-admin", Role.ADMIN)
        code = factories.pairing_code(db, world.ward_ids[0])
        create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
    server = live_server(data_dir=tmp_path, device_rate_per_s=10_000.0, device_rate_burst=100_000)
    with httpx.Client(base_url=server.url) as client:
        user_token = client.post("/api/v1/auth/token", json={"username": "fuzz-supervisor",
                                                             "password": factories.PASSWORD}).json()["access_token"]
        device_token = client.post(f"{DEVICE_PREFIX}/pair", json={"code": code}).json()["token"]
        admin_token = client.post("/api/v1/auth/token", json={"username": "fuzz-admin",
                                                              "password": factories.PASSWORD}).json()["access_token"]
    # The API map is for administrators only (outside the demo).
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json",
                                           headers={"authorization": f"Bearer {admin_token}"})
    return schema, {"anonymous": {}, "user": {"authorization": f"Bearer {user_token}"},
                    "device": {"authorization": f"Bearer {device_token}"}}


@pytest.mark.slow
def test_no_operation_answers_with_a_server_error(fuzz_target) -> None:
    schema, identities = fuzz_target
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10
    for operation in operations:
        for who, headers in identities.items():
            _fuzz(operation, who, headers, failures)
    assert failures == []


def _fuzz(operation, who: str, headers: dict[str, str], failures: list[str]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy())
    def fuzz(case) -> None:
        if case.query and "wait_s" in case.query:
            case.query["wait_s"] = 0  # a long-poll would make every example wait
        response = case.call(headers=headers, timeout=30)
        if response.status_code >= 500:
            failures.append(f"{who} {operation.method.upper()} {operation.path}: {response.status_code} "
                            f"{response.text[:200]}")

    fuzz()
