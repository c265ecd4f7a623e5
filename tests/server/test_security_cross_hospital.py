"""Hospital staff reaching another hospital's patient, against a real server on loopback: a roster row that
would admit or rename them is refused and raises a 叠床 flag; replacing their enrolled face is refused; a
replacement at one's own desk needs a reason, is audited and flagged (the face engine itself is not needed:
these refusals come before any photo is analysed)."""

from __future__ import annotations

import re
from contextlib import closing

import httpx
import pytest
from sqlmodel import Session, col, select

from models.verdicts import FlagKind
from server.accounts.tables import Role
from server.admissions.tables import Admission
from server.flags.tables import Flag
from server.hospitals import service as hospitals
from server.hospitals.tables import Hospital
from server.persons.tables import FaceEmbedding, InsuredPerson
from tests import factories
from tests.console.helpers import sign_in

HEADER = "hospital_code,ward_code,bed_label,insurance_number,name,his_admission_no,admitted_at,discharged_at\n"
PHOTOS = "/api/enrollment/persons/{}/photos"


def _client(base_url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=60)
    token = client.post("/api/v1/auth/token", json={"username": username, "password": factories.PASSWORD})
    client.headers["authorization"] = f"Bearer {token.raise_for_status().json()['access_token']}"
    return client


def _import(client: httpx.Client, *lines: str) -> dict:
    body = (HEADER + "\n".join(lines) + "\n").encode()
    response = client.post("/api/v1/roster/import", files={"file": ("his.csv", body, "text/csv")})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def county(engine):
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=2, patients_per_ward=["a"])
        factories.user(db, "staff1", Role.HOSPITAL_STAFF, hospital_id=world.hospital_ids[0])
        factories.user(db, "staff2", Role.HOSPITAL_STAFF, hospital_id=world.hospital_ids[1])
        factories.user(db, "sup", Role.SUPERVISOR)
        codes = {h.id: h.code for h in db.exec(select(Hospital))}
        number = db.get(InsuredPerson, world.patients["h1:a"].person_id).insurance_number
        hospitals.get_or_create_bed(db, ward_id=world.ward_ids[1], label="09")
        db.commit()
    return world, codes, number


def test_a_hospital_cannot_admit_or_rename_another_hospitals_inpatient_through_its_roster(engine, county,
                                                                                          live_server) -> None:
    world, codes, number = county
    patient = world.patients["h1:a"]
    server = live_server()
    h2 = codes[world.hospital_ids[1]]
    with closing(_client(server.url, "staff2")) as staff2:
        report = _import(staff2, f"{h2},W1,09,{number},冒名者,H2-1,2026-12-01T08:00:00,")
        assert report["created"] == 0 and report["duplicate_admission_flags"] == 1
        assert [(r["line"], r["code"]) for r in report["rejected"]] == [(2, "admitted_elsewhere")]
        again = _import(staff2, f"{h2},W1,09,{number},冒名者,H2-1,2026-12-01T08:00:00,")  # the same file again
        assert again["duplicate_admission_flags"] == 0 and again["rejected"][0]["code"] == "admitted_elsewhere"
        # Even under the person's own name: a re-admission elsewhere is refused, not an update.
        same_name = _import(staff2, f"{h2},W1,09,{number},患者a,H2-2,2026-12-01T08:00:00,")
        assert same_name["rejected"][0]["code"] == "admitted_elsewhere"
        flags = staff2.get("/api/v1/flags", params={"kind": "duplicate_admission"}).json()
        assert flags["total"] == 2
    with Session(engine) as db:
        person = db.get(InsuredPerson, patient.person_id)
        assert person.name == "患者a"  # never renamed county-wide
        assert db.exec(select(Admission).where(Admission.insured_person_id == patient.person_id)).all() == [
            db.get(Admission, patient.admission_id)]  # no admission in hospital 2
        flag = db.exec(select(Flag).where(Flag.kind == FlagKind.DUPLICATE_ADMISSION).order_by(col(Flag.id))).first()
        assert flag.hospital_id == world.hospital_ids[1] and flag.insured_person_id == patient.person_id
        assert flag.details["admission_ids"] == [patient.admission_id]
        assert flag.details["reason"] == "admitted_elsewhere"
    # The flag reads in words on the console, for the hospital and for the bureau (no raw keys or codes).
    for username in ("staff2", "sup"):
        with closing(sign_in(server.url, username)) as browser:
            page = browser.get(f"/console/flags/{flag.id}")
            assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
            assert "被拒绝的住院号" in page.text and "该参保人正在其他医院住院" in page.text
            shown = re.sub(r"<[^>]+>", " ", page.text)  # what a reader sees (attributes carry keys)
            assert "admitted_elsewhere" not in shown and "refused_his_admission_no" not in shown


def test_a_hospitals_own_rows_for_its_own_patients_still_import(engine, county, live_server) -> None:
    world, codes, number = county
    server = live_server()
    h1 = codes[world.hospital_ids[0]]
    with closing(_client(server.url, "staff1")) as staff1:
        report = _import(staff1, f"{h1},W1,01,{number},患者a,A0a,2026-12-01T08:00:00,")  # its own admission
        assert report["rejected"] == [] and report["duplicate_admission_flags"] == 0


def test_another_hospitals_patients_face_cannot_be_replaced_and_a_replacement_needs_a_reason(engine, county,
                                                                                             live_server) -> None:
    world, _, number = county
    server = live_server()
    photo = {"photo": ("p.jpg", b"\xff\xd8 not analysed: refused before", "image/jpeg")}
    with closing(_client(server.url, "staff2")) as staff2, closing(_client(server.url, "staff1")) as staff1:
        foreign = staff2.post(PHOTOS.format(number), files=photo, data={"replace": "true", "reason": "新照片"})
        assert foreign.status_code == 404 and foreign.json()["code"] == "not_found"
        silent = staff1.post(PHOTOS.format(number), files=photo, data={"replace": "true"})
        assert silent.status_code == 422 and silent.json()["details"]["field"] == "reason"
    with Session(engine) as db:
        faces = db.exec(select(FaceEmbedding).where(
            FaceEmbedding.insured_person_id == world.patients["h1:a"].person_id)).all()
        assert [f.is_active for f in faces] == [True]
        assert db.exec(select(Flag).where(Flag.kind == FlagKind.FACE_REPLACED)).all() == []


def test_a_hospitals_pending_replacement_reads_in_words_and_changes_no_face_until_confirmed(engine, county,
                                                                                           live_server) -> None:
    from enrollment.analyse import PhotoAnalysis
    from enrollment.service import enroll_photo
    from enrollment.synthetic import SyntheticFaces
    from models.faces.engines import SYNTHETIC
    from server.persons.face_index import FaceIndex

    world, _, number = county
    person_id = world.patients["h1:a"].person_id
    with Session(engine) as db:
        planted = PhotoAnalysis(sha256="q" * 64, encoding=SyntheticFaces(21).identities(1)[0],
                                thumbnail_jpeg=b"jpeg", engine_version=SYNTHETIC.tag)
        result = enroll_photo(db, index=FaceIndex(), insurance_number=number, name="", photo=planted, source="desk",
                              actor="user:staff1", duplicate_threshold=0.4, replace=True, replace_reason="新照片",
                              staff_hospital_id=world.hospital_ids[0])
        flag_id = result.replaced_flag_id
    server = live_server()

    def faces() -> list[tuple[bool, bool]]:
        with Session(engine) as db:
            return [(f.id == result.embedding_id, f.is_active) for f in db.exec(select(FaceEmbedding).where(
                FaceEmbedding.insured_person_id == person_id).order_by(col(FaceEmbedding.id)))]

    assert faces() == [(False, True), (True, False)]
    for username in ("staff1", "sup"):
        with closing(sign_in(server.url, username)) as browser:
            page = browser.get(f"/console/flags/{flag_id}")
            assert page.status_code == 200 and "新照片待终审确认后启用" in page.text
            shown = re.sub(r"<[^>]+>", " ", page.text)
            assert "new_face_pending" not in shown and "pending_embedding_id" not in shown
    # The hospital cannot move its own flag on; a single bureau user cannot both review and confirm it.
    with closing(_client(server.url, "staff1")) as staff1, closing(_client(server.url, "sup")) as sup:
        transition = f"/api/v1/flags/{flag_id}/transition"
        assert staff1.post(transition, json={"to": "first_reviewed", "reason": "evidence_clear"}).status_code == 403
        assert sup.post(transition, json={"to": "first_reviewed", "reason": "evidence_clear"}).status_code == 200
        same = sup.post(transition, json={"to": "confirmed", "reason": "evidence_clear"})
        assert same.status_code == 403 and same.json()["code"] == "same_reviewer"
    assert faces() == [(False, True), (True, False)]
