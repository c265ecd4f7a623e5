"""The unannounced-check rule on every list, count, export and page of a hospital user: nothing of a spot check
still running (no flag, no count, no patient name) until its deadline, then everything (through the real server)."""

from __future__ import annotations

import re
from contextlib import closing
from datetime import datetime, timedelta

from sqlmodel import Session, select

from models.verdicts import FlagKind, Verdict
from server.campaigns.service import create_campaign
from server.campaigns.tables import Campaign, CheckTask
from server.db import utcnow
from server.flags.tables import Flag, FlagStatus, Review
from server.localtime import LOCAL_TZ
from server.persons.tables import InsuredPerson
from tests import factories
from tests.console import helpers
from tests.console.helpers import sign_in


def _flag_for(db: Session, campaign: Campaign, hospital_id: int, index: int, kind: FlagKind,
              verdict: Verdict) -> tuple[int, str, int]:
    tasks = list(db.exec(select(CheckTask).where(CheckTask.campaign_id == campaign.id,
                                                 CheckTask.hospital_id == hospital_id).order_by(CheckTask.id)))
    for task in tasks:
        task.verdict = Verdict.VERIFIED
        db.add(task)
    task = tasks[index]
    task.verdict = verdict
    flag = Flag(kind=kind, status=FlagStatus.FIRST_REVIEWED, hospital_id=hospital_id, campaign_id=campaign.id,
                task_id=task.id, admission_id=task.admission_id, insured_person_id=task.insured_person_id, details={})
    db.add(flag)
    db.flush()
    db.add(Review(flag_id=flag.id, from_status=FlagStatus.OPEN, to_status=FlagStatus.FIRST_REVIEWED,
                  reason="evidence_clear", actor="rev"))
    person = db.get(InsuredPerson, task.insured_person_id)
    assert person is not None
    return flag.id or 0, person.name, person.id or 0


def _api(base: str, username: str):
    import httpx

    client = httpx.Client(base_url=base, timeout=30)
    token = client.post("/api/v1/auth/token", json={"username": username, "password": factories.PASSWORD}).json()
    client.headers["authorization"] = f"Bearer {token['access_token']}"
    return client


def test_a_running_spot_check_is_invisible_to_the_hospital_everywhere_until_its_deadline(engine, live_server) -> None:
    with Session(engine, expire_on_commit=False) as db:
        world = helpers.build(db)
        h1 = world.hospital_ids[0]
        over = create_campaign(db, hospital_ids=[h1], deadline_s=600, actor="test")
        over.deadline_at = utcnow() - timedelta(seconds=1)
        db.add(over)
        seen_id, seen_name, _ = _flag_for(db, over, h1, 0, FlagKind.ABSENT, Verdict.ABSENT)
        running = create_campaign(db, hospital_ids=[h1], deadline_s=600, actor="test")
        hidden_id, hidden_name, hidden_person = _flag_for(db, running, h1, 1, FlagKind.IMPERSONATED,
                                                          Verdict.IMPERSONATED)
        db.commit()
        running_id = running.id
    assert seen_name != hidden_name
    today = datetime.now(LOCAL_TZ).date().isoformat()
    period = {"from": today, "to": today}
    server = live_server()
    with closing(sign_in(server.url, "staff1")) as staff, closing(_api(server.url, "staff1")) as api, \
            closing(sign_in(server.url, "sup")) as sup:
        # The bureau sees both.
        assert re.search(r'id="flag-total">2<', sup.get("/console/flags", params={"status": ""}).text)

        todo = staff.get("/console/todo").text
        assert seen_name in todo and hidden_name not in todo and f"/flags/{hidden_id}" not in todo
        queue = staff.get("/console/flags", params={"status": ""}).text
        assert re.search(r'id="flag-total">1<', queue) and hidden_name not in queue
        assert staff.get(f"/console/flags/{hidden_id}").status_code == 404
        assert staff.get(f"/console/flags/{seen_id}").status_code == 200
        export = staff.get("/console/exports/flags.csv", params={"status": ""}).content.decode("utf-8-sig")
        assert seen_name in export and hidden_name not in export
        statistics = staff.get("/console/statistics", params=period).text
        assert 'id="total-checks">3<' in statistics  # the finished check's three beds, not the running one's
        report = staff.get("/console/reports", params=period).text
        assert 'data-kind="impersonated"' not in report and 'data-kind="absent"' in report
        person = staff.get(f"/console/persons/{hidden_person}").text
        assert f"/flags/{hidden_id}" not in person
        listed = api.get("/api/v1/flags").json()
        assert [f["id"] for f in listed["items"]] == [seen_id]
        assert api.get(f"/api/v1/flags/{hidden_id}").status_code == 404
        assert staff.get("/console/dashboard", params={"campaign_id": running_id}).status_code == 404

        # At the deadline the check is announced: the same pages now show it.
        with Session(engine) as db:
            campaign = db.get(Campaign, running_id)
            assert campaign is not None
            campaign.deadline_at = utcnow() - timedelta(seconds=1)
            db.add(campaign)
            db.commit()
        assert hidden_name in staff.get("/console/todo").text
        assert staff.get(f"/console/flags/{hidden_id}").status_code == 200
        assert 'id="total-checks">6<' in staff.get("/console/statistics", params=period).text
        assert len(api.get("/api/v1/flags").json()["items"]) == 2
