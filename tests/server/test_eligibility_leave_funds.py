"""Eligibility at import, approved leave, refused funds and the period report, all through the HTTP API of a
real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import time
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
from openpyxl import load_workbook
from sqlmodel import Session, select

from models.verdicts import CaptureOutcome
from models.wire import DEVICE_PREFIX, LivenessReport, ResultUpload, TaskBatch
from server.accounts.tables import Role
from server.admissions.tables import Admission
from server.campaigns.tables import Campaign
from server.funds import rules
from server.funds.tables import CountedDays
from server.hospitals import service as hospitals
from server.hospitals.tables import HospitalKind
from server.localtime import LOCAL_TZ
from server.simulation.embeddings import identity, photo_of
from tests import factories
from tests.console.helpers import sign_in
from tests.factories import synthetic_evidence

LIVE = LivenessReport(is_live=True, score=0.9, blink_detected=True, passive_score=0.9)


def _api(base_url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    token = client.post("/api/v1/auth/token", json={"username": username, "password": factories.PASSWORD})
    client.headers["authorization"] = f"Bearer {token.raise_for_status().json()['access_token']}"
    return client


def _device(base_url: str, code: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    token = client.post(f"{DEVICE_PREFIX}/pair", json={"code": code, "name": "tablet"}).raise_for_status().json()
    client.headers["authorization"] = f"Bearer {token['token']}"
    return client


def _answer(device: httpx.Client, plan: dict[int, tuple[str, np.ndarray]], rng: np.random.Generator) -> dict[int, str]:
    """Answers every task of the ward: 'empty' -> bed empty, 'ok' -> the patient, 'other' -> a stranger."""
    batch = TaskBatch.model_validate(device.get(f"{DEVICE_PREFIX}/tasks", params={"wait_s": 5}).json())
    verdicts = {}
    for task in batch.tasks:
        role, face = plan[task.admission_id]
        base = {"idempotency_key": uuid.uuid4().hex, "task_id": task.task_id, "nonce": task.nonce,
                "captured_at": datetime.now(UTC)}
        if role == "empty":
            upload = ResultUpload(outcome=CaptureOutcome.BED_EMPTY, **base)
        else:
            embedding = photo_of(face, rng) if role == "ok" else identity(rng)
            upload = ResultUpload(outcome=CaptureOutcome.FACE_CAPTURED, embedding=list(embedding), liveness=LIVE,
                                  **synthetic_evidence(embedding, task.bed_id), **base)
        ack = device.post(f"{DEVICE_PREFIX}/results", content=upload.model_dump_json(),
                          headers={"content-type": "application/json"}).raise_for_status().json()
        verdicts[task.admission_id] = ack["verdict"]
    return verdicts


def _flags(api: httpx.Client, **filters: object) -> list[dict]:
    return api.get("/api/v1/flags", params={"limit": 500, **filters}).raise_for_status().json()["items"]


ROSTER = ("hospital_code,ward_code,bed_label,insurance_number,name,his_admission_no,admitted_at,insurance_status,"
          "insurance_type,insured_from,insured_until,fund_per_day\n"
          "R1,W1,01,P-ACTIVE,甲,A1,2026-11-10T08:00:00+08:00,active,职工医保,2020-01-01,,300.00\n"
          "R1,W1,02,P-SUSPENDED,乙,A2,2026-11-10T08:00:00+08:00,暂停,城乡居民医保,2020-01-01,,120.5\n"
          "R1,W1,03,P-ENDED,丙,A3,2026-11-10T08:00:00+08:00,ended,职工医保,2019-01-01,2026-10-31,200\n"
          "R1,W1,04,P-COVERED,丁,A4,2026-11-10T08:00:00+08:00,ended,职工医保,2019-01-01,2026-11-30,200\n"
          "R1,W1,05,P-UNKNOWN,戊,A5,2026-11-10T08:00:00+08:00,,,,,\n"
          "R1,W1,06,P-BADMONEY,己,A6,2026-11-10T08:00:00+08:00,active,,,,12.345\n"
          "R1,W1,07,P-BADSTATUS,庚,A7,2026-11-10T08:00:00+08:00,maybe,,,,10\n")


# The bureau's registry feed (the only writer of the registry): the roster's insurance columns agree with it.
REGISTRY = ("insurance_number,name,insurance_status,insurance_type,insured_from,insured_until\n"
            "P-ACTIVE,甲,active,职工医保,2020-01-01,\n"
            "P-SUSPENDED,乙,暂停,城乡居民医保,2020-01-01,\n"
            "P-ENDED,丙,ended,职工医保,2019-01-01,2026-10-31\n"
            "P-COVERED,丁,ended,职工医保,2019-01-01,2026-11-30\n")


def test_uninsured_admissions_are_flagged_at_import_and_bad_rows_rejected_with_their_line(engine, live_server):
    with Session(engine) as db:
        county = hospitals.get_or_create_county(db, province="P", city="C", county="Roster County")
        hospitals.upsert_hospital(db, code="R1", name="One", county_id=county.id or 0, kind=HospitalKind.PUBLIC)
        db.commit()
        factories.user(db, "sup", Role.SUPERVISOR)
    server = live_server()
    with closing(_api(server.url, "sup")) as api:
        fed = api.post("/api/v1/registry/import", files={"file": ("registry.csv", REGISTRY.encode(), "text/csv")})
        assert fed.status_code == 200 and fed.json()["created"] == 4, fed.text
        # Wards and beds are a registry of their own: this roster registers its beds as it goes.
        response = api.post("/api/v1/roster/import", params={"create_beds": "true"},
                            files={"file": ("his.csv", ROSTER.encode(), "text/csv")})
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["created"] == 5 and report["ineligible"] == 3 and report["registry_mismatches"] == 0
        assert [(r["line"], "fund_per_day" in r["message"] or "insurance_status" in r["message"])
                for r in report["rejected"]] == [(7, True), (8, True)]
        flagged = {f["details"]["reason"] for f in _flags(api, kind="ineligible")}
        assert flagged == {"suspended", "coverage_ended", "not_in_registry"}
        again = api.post("/api/v1/roster/import", files={"file": ("his.csv", ROSTER.encode(), "text/csv")}).json()
        assert again["ineligible"] == 0 and len(_flags(api, kind="ineligible")) == 3  # one flag per admission
        campaign = api.post("/api/v1/campaigns", json={"county": "Roster County", "deadline_s": 600}).json()
        progress = api.get(f"/api/v1/campaigns/{campaign['id']}/progress").json()
        assert progress["total"] == 5 and progress["ineligible"] == 3  # counted in the spot check
    with Session(engine) as db:
        assert db.exec(select(Admission.fund_per_day_fen).where(Admission.his_admission_no == "A2")).one() == 12050


def _leave(api: httpx.Client, admission_id: int, starts_at: datetime, ends_at: datetime) -> httpx.Response:
    return api.post("/api/v1/leaves", json={
        "admission_id": admission_id, "starts_at": starts_at.isoformat(), "ends_at": ends_at.isoformat(),
        "reason": "回家取物", "approved_by_doctor": "王医生", "approved_by_insurance_officer": "李科长"})


def test_empty_bed_inside_an_approved_leave_is_on_leave_and_a_later_leave_changes_nothing(engine, live_server):
    rng = np.random.default_rng(3)
    with Session(engine) as db:
        world = factories.build_world(db, hospitals_n=1, patients_per_ward=["leave", "away", "late", "other"])
        factories.user(db, "sup", Role.SUPERVISOR)
        factories.user(db, "staff1", Role.HOSPITAL_STAFF, hospital_id=world.hospital_ids[0])
        code = factories.pairing_code(db, world.ward_ids[0])
    p = world.patients
    server = live_server()
    now = datetime.now(UTC)
    with (closing(_api(server.url, "sup")) as sup, closing(_api(server.url, "staff1")) as staff,
          closing(_device(server.url, code)) as device):
        assert _leave(staff, p["h1:leave"].admission_id, now, now + timedelta(hours=1)).status_code == 201
        refused = _leave(staff, p["h1:away"].admission_id, now - timedelta(hours=2), now + timedelta(hours=1))
        assert refused.status_code == 422 and refused.json()["code"] == "invalid_input"  # registered after its start
        assert sup.post("/api/v1/campaigns", json={"county": world.county, "deadline_s": 600}).status_code == 201
        time.sleep(0.01)
        assert _leave(staff, p["h1:late"].admission_id, now, now + timedelta(hours=1)).status_code == 201
        plan = {pt.admission_id: ("empty" if key != "h1:other" else "ok", pt.face) for key, pt in p.items()}
        verdicts = _answer(device, plan, rng)
        assert verdicts == {p["h1:leave"].admission_id: "on_leave", p["h1:away"].admission_id: "absent",
                            p["h1:late"].admission_id: "absent", p["h1:other"].admission_id: "verified"}
        absent = {f["admission_id"] for f in _flags(sup, kind="absent")}
        assert absent == {p["h1:away"].admission_id, p["h1:late"].admission_id}
        listed = staff.get("/api/v1/leaves").json()
        assert len(listed) == 2 and all(item["approved_by_doctor"] == "王医生" for item in listed)


def test_overdue_return_and_a_leave_over_a_night_are_flagged(engine, live_server):
    with Session(engine) as db:
        world = factories.build_world(db, hospitals_n=1, patients_per_ward=["short", "night"])
        factories.user(db, "staff1", Role.HOSPITAL_STAFF, hospital_id=world.hospital_ids[0])
        factories.user(db, "sup", Role.SUPERVISOR)
    p = world.patients
    server = live_server()
    now = datetime.now(UTC)
    # The agreement's night is placed hours away from now (its default, 22:00-06:00, would hold the short leave
    # below whenever the test ran at night): the outcome must not depend on the time of day the suite runs.
    night_from = now.astimezone(LOCAL_TZ) + timedelta(hours=3)
    with Session(engine) as db:
        rules.set_rule(db, region_name=world.county, actor="test", leave_overnight_allowed=False,
                       night_starts=night_from.strftime("%H:%M"),
                       night_ends=(night_from + timedelta(hours=6)).strftime("%H:%M"))
    evening = night_from - timedelta(hours=1)
    with closing(_api(server.url, "staff1")) as staff, closing(_api(server.url, "sup")) as sup:
        short = _leave(staff, p["h1:short"].admission_id, now, now + timedelta(seconds=1)).json()
        night = _leave(staff, p["h1:night"].admission_id, evening, evening + timedelta(hours=12))
        assert night.status_code == 201
        assert [f["admission_id"] for f in _flags(sup, kind="leave_overnight")] == [p["h1:night"].admission_id]
        assert _flags(sup, kind="leave_overdue") == []
        time.sleep(1.5)
        back = staff.post(f"/api/v1/leaves/{short['id']}/return")
        assert back.status_code == 200 and back.json()["returned_at"] is not None
        overdue = _flags(sup, kind="leave_overdue")
        assert [f["admission_id"] for f in overdue] == [p["h1:short"].admission_id]
        assert overdue[0]["details"]["overdue_s"] >= 0
        assert staff.post(f"/api/v1/leaves/{short['id']}/return").status_code == 409


def _review(sup: httpx.Client, rev: httpx.Client, flag_id: int) -> dict:
    first = rev.post(f"/api/v1/flags/{flag_id}/transition", json={"to": "first_reviewed", "reason": "evidence_clear"})
    assert first.status_code == 200, first.text
    final = sup.post(f"/api/v1/flags/{flag_id}/transition", json={"to": "confirmed", "reason": "evidence_clear"})
    assert final.status_code == 200, final.text
    return final.json()


def test_confirmed_flags_carry_the_agreement_amount_an_upheld_appeal_clears_it_and_the_report_sums_them(
        engine, live_server):
    """Hand-computed county: two hospitals, admitted ten local days before the check, ¥350.50 and ¥200 a day."""
    rng = np.random.default_rng(9)
    admitted = datetime.now(UTC) - timedelta(days=10)
    with Session(engine) as db:
        world = factories.build_world(db, hospitals_n=2, patients_per_ward=["ok", "away", "other"])
        for key, patient in world.patients.items():
            admission = db.get(Admission, patient.admission_id)
            admission.admitted_at = admitted
            admission.fund_per_day_fen = 35050 if key.startswith("h1") else 20000
            db.add(admission)
        db.commit()
        rules.set_rule(db, region_name=world.county, actor="test", counted_days=CountedDays.SINCE_LAST_VERIFIED,
                       deduction_multiple=2.0, kind_multiples={"impersonated": 10})
        for name, role in (("sup", Role.SUPERVISOR), ("rev", Role.REVIEWER), ("sup2", Role.SUPERVISOR)):
            factories.user(db, name, role)
        factories.user(db, "staff1", Role.HOSPITAL_STAFF, hospital_id=world.hospital_ids[0])
        codes = [factories.pairing_code(db, ward) for ward in world.ward_ids]
    server = live_server()
    plan = {pt.admission_id: ({"ok": "ok", "away": "empty", "other": "other"}[key.split(":")[1]], pt.face)
            for key, pt in world.patients.items()}
    with (closing(_api(server.url, "sup")) as sup, closing(_api(server.url, "rev")) as rev,
          closing(_api(server.url, "staff1")) as staff):
        assert sup.post("/api/v1/campaigns", json={"county": world.county, "deadline_s": 600}).status_code == 201
        for code in codes:
            with closing(_device(server.url, code)) as device:
                assert len(_answer(device, plan, rng)) == 3
        flags = {(f["hospital_id"], f["kind"]): f for f in _flags(sup)}
        assert len(flags) == 4
        amounts = {key: _review(sup, rev, f["id"]) for key, f in flags.items()}
        h1, h2 = world.hospital_ids
        days = (datetime.now(LOCAL_TZ).date() - admitted.astimezone(LOCAL_TZ).date()).days
        assert days == 10
        expected = {(h1, "absent"): (350500, 701000), (h1, "impersonated"): (350500, 3505000),
                    (h2, "absent"): (200000, 400000), (h2, "impersonated"): (200000, 2000000)}
        assert {k: (f["refused_fen"], f["deduction_fen"]) for k, f in amounts.items()} == expected
        assert amounts[(h1, "absent")]["details"]["funds"]["days"] == 10

        with closing(sign_in(server.url, "sup")) as console:
            page = console.get(f"/console/flags/{flags[(h1, 'absent')]['id']}").text
            assert 'id="refused">¥3,505.00<' in page and 'id="deduction">¥7,010.00<' in page
            export = console.get("/console/exports/flags.xlsx", params={"status": "confirmed"})
            sheet = load_workbook(io.BytesIO(export.content)).active
            header = [c.value for c in sheet[1]]
            refused_column = [row[header.index("拒付金额")] for row in sheet.iter_rows(min_row=2, values_only=True)]
            assert refused_column[-1] == 3505.0 + 3505.0 + 2000.0 + 2000.0  # the totals row

        upheld = flags[(h1, "impersonated")]["id"]
        with Session(engine) as db:  # the unannounced check's deadline passes: the hospital may now answer it
            for campaign in db.exec(select(Campaign)):
                campaign.deadline_at = campaign.created_at
                db.add(campaign)
            db.commit()
        appeal = staff.post(f"/api/v1/flags/{upheld}/appeals", data={"statement": "家属陪护，非冒名"})
        assert appeal.status_code == 201, appeal.text
        # The appeal is decided by a third person: the confirmer may not (neither may the first reviewer).
        assert sup.post(f"/api/v1/flags/{upheld}/transition",
                        json={"to": "dismissed", "reason": "appeal_accepted"}).json()["code"] == "same_reviewer"
        with closing(_api(server.url, "sup2")) as third:
            cleared = third.post(f"/api/v1/flags/{upheld}/transition",
                                 json={"to": "dismissed", "reason": "appeal_accepted"})
        assert (cleared.json()["refused_fen"], cleared.json()["deduction_fen"]) == (0, 0)

        today = datetime.now(LOCAL_TZ).date().isoformat()
        report = sup.get("/api/v1/reports", params={"from": today, "to": today, "county": world.county}).json()
        listed = _flags(sup)
        total = report["total"]
        assert total["refused_fen"] == sum(f["refused_fen"] or 0 for f in listed) == 350500 + 200000 + 200000
        assert total["deduction_fen"] == sum(f["deduction_fen"] or 0 for f in listed) == 701000 + 400000 + 2000000
        assert (total["checks"], total["verified"], total["confirmed"], total["appealed"], total["upheld"]) == (
            6, 2, 3, 1, 1)
        assert total["inpatients"] == 6 and abs(total["pass_rate"] - 2 / 6) < 1e-9
        assert total["flags"] == {"absent": 2, "impersonated": 2}
        by_id = {r["hospital_id"]: r for r in report["hospitals"]}
        assert by_id[h1]["refused_fen"] == 350500 and by_id[h2]["refused_fen"] == 400000
        assert [r["rank"] for r in report["hospitals"]] == [1, 2] and report["hospitals"][0]["hospital_id"] == h1
        (month,) = report["months"]
        assert (month["row"]["checks"], month["row"]["confirmed"], month["row"]["refused_fen"]) == (
            6, 3, total["refused_fen"])
        assert [q["row"]["checks"] for q in report["quarters"]] == [6]
        mine = staff.get("/api/v1/reports", params={"from": today, "to": today}).json()
        assert [r["hospital_id"] for r in mine["hospitals"]] == [h1]
