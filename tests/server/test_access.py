"""Access control on every route: a declared credential, roles, and hospital scope (another hospital's data is 404)."""

from __future__ import annotations

import httpx
from fastapi.routing import APIRoute
from sqlmodel import Session

from server.accounts.deps import RequireRoles, get_current_user
from server.accounts.tables import Role
from server.app import PUBLIC_ROUTE_NAMES, create_app
from server.campaigns.service import create_campaign
from server.devices.deps import get_current_device
from server.settings import ServerSettings
from tests import factories


def _dependency_calls(route: APIRoute) -> set:
    found, stack = set(), list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        found.add(dep.call if not isinstance(dep.call, RequireRoles) else RequireRoles)
        stack.extend(dep.dependencies)
    return found


def test_every_route_declares_a_user_or_device_credential(tmp_path) -> None:
    app = create_app(ServerSettings(database_url=f"sqlite:///{tmp_path / 'a.db'}", run_scheduler=False))
    unguarded = [r.path for r in app.routes if isinstance(r, APIRoute) and r.name not in PUBLIC_ROUTE_NAMES
                 and not ({get_current_user, get_current_device} & _dependency_calls(r))]
    assert unguarded == []
    app.state.engine.dispose()


def _login(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    token = client.post("/api/v1/auth/token", json={"username": username, "password": factories.PASSWORD})
    assert token.status_code == 200, token.text
    client.headers["authorization"] = f"Bearer {token.json()['access_token']}"
    return client


def test_hospital_staff_see_only_their_hospital(engine, live_server) -> None:
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=2, patients_per_ward=["a"])
        h1, h2 = world.hospital_ids
        factories.user(db, "staff1", Role.HOSPITAL_STAFF, hospital_id=h1)
        factories.user(db, "sup", Role.SUPERVISOR)
        campaign = create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=1, actor="test")
    server = live_server(run_scheduler=True, sweep_interval_s=0.2)
    import time

    time.sleep(2.0)  # the sweep flags both unanswered tasks as overdue
    staff, sup = _login(server.url, "staff1"), _login(server.url, "sup")
    try:
        all_flags = sup.get("/api/v1/flags").json()
        assert {f["hospital_id"] for f in all_flags["items"]} == {h1, h2}
        own = staff.get("/api/v1/flags", params={"kind": "overdue"}).json()
        assert own["total"] == 1 and own["items"][0]["hospital_id"] == h1
        other_id = next(f["id"] for f in all_flags["items"] if f["hospital_id"] == h2)
        assert staff.get(f"/api/v1/flags/{other_id}").status_code == 404
        assert staff.get("/api/v1/flags", params={"hospital_id": h2}).status_code == 404
        tasks = staff.get(f"/api/v1/campaigns/{campaign.id}/tasks").json()
        assert {t["hospital_id"] for t in tasks["items"]} == {h1}
        assert staff.post("/api/v1/campaigns", json={"county": world.county}).status_code == 403
        appeal = {"to": "appealed", "reason": "other", "comment": "x"}
        assert staff.post(f"/api/v1/flags/{other_id}/transition", json=appeal).status_code == 404
    finally:
        staff.close()
        sup.close()


def test_wrong_password_and_forged_token_are_refused(engine, live_server) -> None:
    with Session(engine) as db:
        factories.user(db, "sup", Role.SUPERVISOR)
    server = live_server()
    wrong = httpx.post(f"{server.url}/api/v1/auth/token", json={"username": "sup", "password": "nope"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_credential"
    forged = httpx.get(f"{server.url}/api/v1/flags", headers={"authorization": "Bearer eyJ1aWQiOjF9.forged"})
    assert forged.status_code == 401
