"""The review's rules through the public JSON API (a real server): two-person review, appeals, 叠床, scope,
unannounced checks, the sweep's audit per campaign. Each rule also has a console test (tests/console)."""

from __future__ import annotations

import time
from contextlib import closing

import httpx
import pytest
from sqlmodel import Session, col, select

from models.verdicts import FlagKind
from server.accounts.tables import Role
from server.audit.tables import AuditRecord
from server.campaigns.service import create_campaign
from server.campaigns.tables import CampaignKind
from server.flags import service as flag_service
from server.flags.tables import Appeal, AppealAttachment, Flag, FlagStatus, Review
from server.hospitals import registry
from server.hospitals.tables import Hospital
from tests import factories

PDF = b"%PDF-1.4\n% ward record\n"


def login(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    token = client.post("/api/v1/auth/token", json={"username": username, "password": factories.PASSWORD})
    assert token.status_code == 200, token.text
    client.headers["authorization"] = f"Bearer {token.json()['access_token']}"
    return client


@pytest.fixture
def world(engine):
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=2, patients_per_ward=["a", "b"])
        for name, role in (("sup", Role.SUPERVISOR), ("sup2", Role.SUPERVISOR), ("rev", Role.REVIEWER)):
            factories.user(db, name, role)
        for n, hospital_id in enumerate(world.hospital_ids, start=1):
            factories.user(db, f"staff{n}", Role.HOSPITAL_STAFF, hospital_id=hospital_id)
    return world


def _flag(engine, world, hospital: int = 0, kind: FlagKind = FlagKind.IMPERSONATED) -> int:
    with Session(engine) as db:
        flag = flag_service.raise_flag(db, kind=kind, hospital_id=world.hospital_ids[hospital], details={})
        db.commit()
        return flag.id or 0


def _move(client: httpx.Client, flag_id: int, to: str, reason: str = "evidence_clear", comment: str = ""):
    return client.post(f"/api/v1/flags/{flag_id}/transition", json={"to": to, "reason": reason, "comment": comment})


def test_final_review_by_the_first_reviewer_is_refused_with_a_reason_code(engine, world, live_server) -> None:
    server = live_server()
    flag_id = _flag(engine, world)
    with closing(login(server.url, "sup")) as sup, closing(login(server.url, "sup2")) as sup2:
        assert _move(sup, flag_id, "first_reviewed", "face_mismatch").status_code == 200
        same = _move(sup, flag_id, "confirmed")
        assert same.status_code == 403 and same.json()["code"] == "same_reviewer"
        assert same.json()["code"] == "same_reviewer"
        # ...also for a dismissal, and the flag did not move
        assert _move(sup, flag_id, "dismissed", "false_match").json()["code"] == "same_reviewer"
        assert sup.get(f"/api/v1/flags/{flag_id}").json()["status"] == "first_reviewed"
        assert _move(sup2, flag_id, "confirmed").status_code == 200
    with Session(engine) as db:
        reviews = list(db.exec(select(Review).where(Review.flag_id == flag_id).order_by(col(Review.id))))
        assert [(r.actor, r.to_status) for r in reviews] == [("sup", FlagStatus.FIRST_REVIEWED),
                                                             ("sup2", FlagStatus.CONFIRMED)]


def test_a_dismissal_needs_a_final_review_and_a_reason_from_the_list(engine, world, live_server) -> None:
    server = live_server()
    flag_id = _flag(engine, world)
    with closing(login(server.url, "rev")) as rev, closing(login(server.url, "sup")) as sup:
        alone = _move(sup, flag_id, "dismissed", "false_match")  # "排除疑点" at first review closes nothing
        assert alone.status_code == 409 and alone.json()["code"] == "transition_not_allowed"
        assert _move(rev, flag_id, "first_reviewed", "made up reason").status_code == 422
        assert _move(rev, flag_id, "first_reviewed", "other").status_code == 422  # 'other' needs a comment
        assert _move(rev, flag_id, "first_reviewed", "false_match", "同一人，光线差").status_code == 200
        assert _move(rev, flag_id, "dismissed", "false_match").status_code == 403  # final review: supervisors
        done = _move(sup, flag_id, "dismissed", "false_match")
        assert done.status_code == 200 and done.json()["status"] == "dismissed"


def test_an_appeal_on_a_flag_waiting_for_first_review_is_refused(engine, world, live_server) -> None:
    server = live_server()
    flag_id = _flag(engine, world)
    with closing(login(server.url, "staff1")) as staff:
        early = staff.post(f"/api/v1/flags/{flag_id}/appeals", data={"statement": "病人在做检查"})
        assert early.status_code == 409 and early.json()["code"] == "transition_not_allowed"
        bare = _move(staff, flag_id, "appealed", "other", "x")  # no bare status change either
        assert bare.status_code in (403, 409)
        assert staff.get(f"/api/v1/flags/{flag_id}").json()["status"] == "open"
    with Session(engine) as db:
        assert db.exec(select(Appeal).where(Appeal.flag_id == flag_id)).first() is None


def test_an_appeal_through_the_api_creates_the_same_appeal_record_as_the_console(engine, world, live_server) -> None:
    from tests.console.helpers import csrf_of, sign_in

    server = live_server()
    by_api, by_console = _flag(engine, world, kind=FlagKind.ABSENT), _flag(engine, world, kind=FlagKind.ABSENT)
    with closing(login(server.url, "rev")) as rev:
        for flag_id in (by_api, by_console):
            assert _move(rev, flag_id, "first_reviewed", "bed_empty").status_code == 200
    with closing(login(server.url, "staff1")) as staff, closing(sign_in(server.url, "staff1")) as browser:
        made = staff.post(f"/api/v1/flags/{by_api}/appeals", data={"statement": "病人当时在做CT检查"},
                          files=[("attachments", ("检查单.pdf", PDF))])
        assert made.status_code == 201, made.text
        assert made.json()["flag_status"] == "appealed" and len(made.json()["attachments"]) == 1
        page = browser.get(f"/console/flags/{by_console}")
        filed = browser.post(f"/console/flags/{by_console}/appeal",
                             data={"csrf_token": csrf_of(page), "statement": "病人当时在做CT检查"},
                             files=[("attachments", ("检查单.pdf", PDF))])
        assert filed.status_code == 303
        assert staff.get(f"/api/v1/flags/{by_api}").json()["status"] == "appealed"
    with Session(engine) as db:
        def record(flag_id: int) -> tuple:
            appeal = db.exec(select(Appeal).where(Appeal.flag_id == flag_id)).one()
            files = db.exec(select(AppealAttachment).where(AppealAttachment.appeal_id == appeal.id)).all()
            audited = db.exec(select(AuditRecord.action).where(AuditRecord.object_type == "flag",
                                                               AuditRecord.object_id == str(flag_id))).all()
            return (appeal.hospital_id, appeal.statement, appeal.created_by,
                    [(f.filename, f.content_type, f.sha256) for f in files], sorted(audited))

        assert record(by_api) == record(by_console)
        assert "appeal.filed" in record(by_api)[4]


def _roster(client: httpx.Client, lines: list[str]) -> dict:
    header = "hospital_code,ward_code,bed_label,insurance_number,name,his_admission_no,admitted_at,discharged_at\n"
    body = (header + "\n".join(lines) + "\n").encode()
    response = client.post("/api/v1/roster/import", files={"file": ("his.csv", body, "text/csv")})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_roster_import_raises_one_duplicate_admission_flag_and_a_discharge_resolves_it(engine, world,
                                                                                       live_server) -> None:
    server = live_server()
    with Session(engine) as db:
        codes = [h.code for h in db.exec(select(Hospital).order_by(col(Hospital.id)))]
        beds = "hospital_code,ward_code,bed_label\n" + "".join(f"{c},W2,01\n" for c in codes)
        registry.import_beds(db, rows=registry.parse_beds(beds.encode()), actor="test")
    h1, h2 = codes
    with closing(login(server.url, "sup")) as sup:
        _roster(sup, [f"{h1},W2,01,DUP-1,刘一,X1,2026-11-01T08:00:00,"])
        assert sup.get("/api/v1/flags", params={"kind": "duplicate_admission"}).json()["total"] == 0
        report = _roster(sup, [f"{h2},W2,01,DUP-1,刘一,Y1,2026-11-02T08:00:00,"])
        assert report["duplicate_admission_flags"] == 1
        _roster(sup, [f"{h2},W2,01,DUP-1,刘一,Y1,2026-11-02T08:00:00,"])  # re-import: still one flag
        flags = sup.get("/api/v1/flags", params={"kind": "duplicate_admission"}).json()
        assert flags["total"] == 1
        flag = flags["items"][0]
        assert len(flag["details"]["admission_ids"]) == 2 and flag["status"] == "open"
        assert sorted(flag["details"]["hospital_ids"]) == sorted(world.hospital_ids)
        _roster(sup, [f"{h1},W2,01,DUP-1,刘一,X1,2026-11-01T08:00:00,2026-11-03T08:00:00"])  # discharged in h1
        assert sup.get(f"/api/v1/flags/{flag['id']}").json()["status"] == "resolved"
    with Session(engine) as db:
        assert db.exec(select(AuditRecord).where(AuditRecord.action == "flag.transition",
                                                 AuditRecord.object_id == str(flag["id"]))).one().actor == "system"


def test_a_spot_check_launch_flags_an_overlap_that_came_in_another_way(engine, world, live_server) -> None:
    from server.admissions.tables import Admission
    from server.db import utcnow

    p1 = world.patients["h1:a"]
    with Session(engine) as db:  # the same person admitted in hospital 2 too, written straight into the table
        db.add(Admission(insured_person_id=p1.person_id, hospital_id=world.hospital_ids[1],
                         ward_id=world.ward_ids[1], bed_id=world.patients["h2:b"].bed_id, his_admission_no="Z9",
                         admitted_at=utcnow()))
        db.commit()
    server = live_server()
    with closing(login(server.url, "sup")) as sup:
        assert sup.post("/api/v1/campaigns", json={"county": world.county, "deadline_s": 600}).status_code == 201
        assert sup.get("/api/v1/flags", params={"kind": "duplicate_admission"}).json()["total"] == 1


def test_a_spot_check_with_an_empty_scope_is_refused(world, live_server) -> None:
    server = live_server()
    with closing(login(server.url, "sup")) as sup:
        for body in ({}, {"hospitals": []}, {"county": ""}, {"deadline_s": 60}):
            refused = sup.post("/api/v1/campaigns", json=body)
            assert refused.status_code == 422 and refused.json()["code"] == "invalid_input", body
        assert sup.get("/api/v1/campaigns").json() == []


def test_hospital_staff_see_neither_a_running_check_nor_another_hospitals_rate(engine, world, live_server) -> None:
    from tests.server.test_device_api import _post, _result, _tasks

    with Session(engine) as db:
        codes = [factories.pairing_code(db, w) for w in world.ward_ids]
    server = live_server(run_scheduler=True, sweep_interval_s=0.2)
    with closing(login(server.url, "sup")) as sup, closing(login(server.url, "staff1")) as staff:
        campaign = sup.post("/api/v1/campaigns", json={"county": world.county, "deadline_s": 3}).json()
        with httpx.Client(base_url=server.url, timeout=30) as device:
            paired = device.post("/api/v1/device/pair", json={"code": codes[0]}).json()
            device.headers["authorization"] = f"Bearer {paired['token']}"
            task = _tasks(device)[0]
            face = next(p.face for p in world.patients.values() if p.admission_id == task.admission_id)
            assert _post(device, _result(task, face)).status_code == 200  # one of hospital 1's two beds verified
        for path in ("", "/progress", "/tasks"):
            assert staff.get(f"/api/v1/campaigns/{campaign['id']}{path}").status_code == 404, path
        assert staff.get("/api/v1/campaigns").json() == []
        assert staff.get("/api/v1/flags").json()["total"] == 0
        time.sleep(4.0)  # past the deadline: announced now
        own, whole = (c.get(f"/api/v1/campaigns/{campaign['id']}/progress").json() for c in (staff, sup))
        assert own["total"] == 2 and set(own["by_hospital"]) == {str(world.hospital_ids[0])}
        assert own["verification_rate"] == pytest.approx(1 / 2)
        assert whole["total"] == 4 and whole["verification_rate"] == pytest.approx(1 / 4)
        assert [c["id"] for c in staff.get("/api/v1/campaigns").json()] == [campaign["id"]]


def test_the_deadline_sweep_audits_each_campaigns_expiries_under_that_campaign(engine, world, live_server) -> None:
    with Session(engine, expire_on_commit=False) as db:
        one = create_campaign(db, hospital_ids=[world.hospital_ids[0]], deadline_s=1, actor="test")
        two = create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=1, actor="test",
                              kind=CampaignKind.ROLL_CALL)
    server = live_server(run_scheduler=True, sweep_interval_s=0.2)
    with closing(login(server.url, "sup")) as sup:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            states = [sup.get(f"/api/v1/campaigns/{c.id}").json()["status"] for c in (one, two)]
            if states == ["completed", "completed"]:
                break
            time.sleep(0.2)
        assert states == ["completed", "completed"]
        assert sup.get(f"/api/v1/campaigns/{one.id}/progress").json()["counts"]["overdue"] == 2
        assert sup.get(f"/api/v1/campaigns/{two.id}/progress").json()["counts"]["overdue"] == 4
    with Session(engine) as db:
        swept = {int(r.object_id): r.data for r in db.exec(select(AuditRecord).where(
            AuditRecord.action == "deadline.swept"))}
    assert set(swept) == {one.id, two.id}
    assert swept[one.id]["overdue"] == 2 and swept[two.id]["overdue"] == 4
    with Session(engine) as db:
        flags = db.exec(select(Flag.campaign_id, Flag.kind)).all()
    assert sorted(k.value for c, k in flags if c == one.id) == ["device_offline"] + ["overdue"] * 2


def test_a_first_review_is_a_recommendation_with_reasons_that_fit_the_flags_kind(engine, world, live_server) -> None:
    server = live_server()
    flag_id = _flag(engine, world)  # an impersonation
    with closing(login(server.url, "rev")) as rev, closing(login(server.url, "sup")) as sup:
        unfit = _move(rev, flag_id, "recommend_confirm", "bed_empty")  # no "bed empty" for an impersonation
        assert unfit.status_code == 422 and "face_mismatch" in unfit.json()["details"]["allowed"]
        assert _move(rev, flag_id, "recommend_dismiss", "valid_exemption").status_code == 422
        assert _move(rev, flag_id, "first_reviewed", "other", "看不清").status_code == 422  # which side?
        assert rev.get(f"/api/v1/flags/{flag_id}").json()["status"] == "open"
        made = _move(rev, flag_id, "recommend_dismiss", "false_match", "同一人，光线差")
        assert made.status_code == 200 and made.json()["status"] == "first_reviewed"
        assert made.json()["details"]["recommendation"] == {"decision": "recommend_dismiss", "reason": "false_match",
                                                           "by": "rev"}
        # The final review decides, whatever was recommended.
        final = _move(sup, flag_id, "confirmed", "face_mismatch")
        assert final.status_code == 200 and final.json()["status"] == "confirmed"
