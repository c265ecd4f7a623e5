"""Admission-desk upload on a live server: roles and hospital scope, clear 4xx for bad images, duplicate flag."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlmodel import Session, select

from models.verdicts import FlagKind
from server.accounts.tables import Role
from server.flags.tables import Flag
from server.persons.tables import FaceEmbedding
from tests import factories

URL = "/api/enrollment/persons/{}/photos"


def _client(base_url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=60)
    token = client.post("/api/v1/auth/token", json={"username": username, "password": factories.PASSWORD})
    client.headers["authorization"] = f"Bearer {token.raise_for_status().json()['access_token']}"
    return client


def _png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def _half_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


@pytest.fixture
def desk(engine, live_server):
    with Session(engine) as db:
        world = factories.build_world(db, hospitals_n=2, patients_per_ward=["a"])
        factories.user(db, "admin", Role.ADMIN)
        factories.user(db, "reviewer", Role.REVIEWER)
        factories.user(db, "staff1", Role.HOSPITAL_STAFF, hospital_id=world.hospital_ids[0])
    server = live_server()
    clients = {name: _client(server.url, name) for name in ("admin", "reviewer", "staff1")}
    yield server, clients
    for client in clients.values():
        client.close()


def _post(client: httpx.Client, number: str, data: bytes, name: str = "", filename: str = "p.jpg") -> httpx.Response:
    return client.post(URL.format(number), files={"photo": (filename, data, "image/jpeg")}, data={"name": name})


def test_bad_images_get_a_clear_4xx_with_their_reason_code(desk) -> None:
    _, clients = desk
    admin = clients["admin"]
    grey = _png(np.full((240, 320, 3), 128, dtype=np.uint8))
    for data, code in ((b"", "empty_image"), (b"not an image at all", "unsupported_format"), (grey, "no_face"),
                       (_half_jpeg(), "image_truncated")):
        response = _post(admin, "NEW-1", data, name="New Person")
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code
    no_name = _post(admin, "NEW-2", grey)
    assert no_name.status_code == 422 and no_name.json()["details"]["field"] == "name"
    assert httpx.post(desk[0].url + URL.format("NEW-1"), files={"photo": ("p.jpg", grey)}).status_code == 401


def test_roles_and_hospital_scope(desk) -> None:
    _, clients = desk
    grey = _png(np.full((240, 320, 3), 128, dtype=np.uint8))
    assert _post(clients["reviewer"], "INS-1-0-a", grey).status_code == 403
    other_hospital = _post(clients["staff1"], "INS-1-1-a", grey)  # admitted in hospital 2, not staff1's
    unknown = _post(clients["staff1"], "NOBODY", grey, name="X")
    assert other_hospital.status_code == unknown.status_code == 404  # indistinguishable from unknown
    assert _post(clients["staff1"], "INS-1-0-a", grey).json()["code"] == "no_face"  # own patient: gates apply


@pytest.mark.faces
def test_desk_enrollment_flags_a_face_already_enrolled_under_another_number(desk, engine, faces_dir) -> None:
    _, clients = desk
    bush = faces_dir / "people" / "george_w_bush"
    first = _post(clients["admin"], "NEW-BUSH", (bush / "01.jpg").read_bytes(), name="G. W. Bush")
    assert first.status_code == 201, first.text
    assert first.json()["person_created"] and first.json()["duplicate_flag_ids"] == []
    repeat = _post(clients["admin"], "NEW-BUSH", (bush / "01.jpg").read_bytes())
    assert repeat.status_code == 200 and repeat.json()["already_enrolled"]

    powell = _post(clients["staff1"], "INS-1-0-a", (faces_dir / "people" / "colin_powell" / "01.jpg").read_bytes())
    assert powell.status_code == 201 and powell.json()["duplicate_flag_ids"] == []  # a different person

    fraud = _post(clients["staff1"], "INS-1-0-a", (bush / "02.jpg").read_bytes())  # Bush's face, patient's number
    assert fraud.status_code == 201, fraud.text
    [flag_id] = fraud.json()["duplicate_flag_ids"]
    with Session(engine) as db:
        flag = db.get(Flag, flag_id)
        assert flag.kind == FlagKind.DUPLICATE_IDENTITY and flag.hospital_id is None
        assert flag.details["other_insurance_number"] == "NEW-BUSH"
        thumbs = db.exec(select(FaceEmbedding.thumbnail_jpeg).where(FaceEmbedding.source == "desk")).all()
        assert len(thumbs) == 3 and all(len(t) < 12_000 for t in thumbs)


@pytest.mark.faces
def test_a_desk_replacement_needs_a_reason_is_audited_and_raises_a_review_flag(desk, engine, faces_dir) -> None:
    from server.audit.tables import AuditRecord

    _, clients = desk
    photo = (faces_dir / "people" / "colin_powell" / "01.jpg").read_bytes()
    form = {"replace": "true", "reason": "入院时照片模糊，重新采集"}
    silent = clients["staff1"].post(URL.format("INS-1-0-a"), files={"photo": ("p.jpg", photo, "image/jpeg")},
                                    data={"replace": "true"})
    assert silent.status_code == 422 and silent.json()["details"]["field"] == "reason"
    foreign = clients["staff1"].post(URL.format("INS-1-1-a"), files={"photo": ("p.jpg", photo, "image/jpeg")},
                                     data=form)
    assert foreign.status_code == 404  # hospital 2's inpatient: as if unknown
    replaced = clients["staff1"].post(URL.format("INS-1-0-a"), files={"photo": ("p.jpg", photo, "image/jpeg")},
                                      data=form)
    assert replaced.status_code == 201, replaced.text
    body = replaced.json()
    assert body["face_pending"]

    def active() -> list[tuple[bool, bool]]:  # (is it the new face, is it active), oldest first
        with Session(engine) as db:
            faces = db.exec(select(FaceEmbedding).where(FaceEmbedding.insured_person_id == body["insured_person_id"])
                            .order_by(FaceEmbedding.id)).all()
            return [(f.id == body["embedding_id"], f.is_active) for f in faces]

    # The hospital's new face waits: the earlier one keeps deciding the checks until the flag is confirmed.
    assert active() == [(False, True), (True, False)]
    with Session(engine) as db:
        flag = db.get(Flag, body["replaced_flag_id"])
        assert flag.kind == FlagKind.FACE_REPLACED and flag.details["replace_reason"] == form["reason"]
        assert flag.details["pending_embedding_id"] == body["embedding_id"]
        record = db.exec(select(AuditRecord).where(AuditRecord.action == "enrollment.face_replacement_pending")).one()
        assert record.actor.startswith("user:") and record.data["flag_id"] == flag.id
    transition = f"/api/v1/flags/{flag.id}/transition"
    first = clients["reviewer"].post(transition, json={"to": "first_reviewed", "reason": "evidence_clear"})
    assert first.status_code == 200, first.text
    assert active() == [(False, True), (True, False)]  # a first review decides nothing
    final = clients["admin"].post(transition, json={"to": "confirmed", "reason": "evidence_clear"})
    assert final.status_code == 200, final.text
    assert active() == [(False, False), (True, True)]  # confirmed by another person: the new face, alone

    # The bureau's own replacement takes effect at once (and is flagged for review afterwards).
    again = clients["admin"].post(URL.format("INS-1-0-a"), data=form, files={
        "photo": ("p.jpg", (faces_dir / "people" / "colin_powell" / "02.jpg").read_bytes(), "image/jpeg")})
    assert again.status_code == 201 and not again.json()["face_pending"] and again.json()["replaced_flag_id"]
    with Session(engine) as db:
        assert [f.id for f in db.exec(select(FaceEmbedding).where(
            FaceEmbedding.insured_person_id == body["insured_person_id"],
            FaceEmbedding.is_active == True))] == [again.json()["embedding_id"]]  # noqa: E712


@pytest.mark.faces
def test_a_desk_name_with_a_bidi_override_is_refused_and_zero_width_characters_removed(desk, engine,
                                                                                        faces_dir) -> None:
    from server.persons.tables import InsuredPerson

    _, clients = desk
    photo = (faces_dir / "people" / "colin_powell" / "01.jpg").read_bytes()
    refused = _post(clients["admin"], "NEW-RTL", photo, name="张三\u202eLQ")
    assert refused.status_code == 422 and refused.json()["code"] == "name_refused"
    assert refused.json()["details"]["code_points"] == ["U+202E RIGHT-TO-LEFT OVERRIDE"]
    cleaned = _post(clients["admin"], "NEW-ZW", photo, name="\u200b李\u200b四")
    assert cleaned.status_code == 201, cleaned.text
    assert cleaned.json()["name_cleaned"] == ["U+200B ZERO WIDTH SPACE"]
    with Session(engine) as db:
        names = {p.insurance_number: p.name for p in db.exec(select(InsuredPerson))}
    assert "NEW-RTL" not in names and names["NEW-ZW"] == "李四"


@pytest.mark.faces
def test_the_desk_asks_for_a_second_photo_and_says_why_until_two_are_enrolled(desk, faces_dir) -> None:
    _, clients = desk
    chavez = faces_dir / "people" / "hugo_chavez"
    first = _post(clients["admin"], "NEW-CHAVEZ", (chavez / "01.jpg").read_bytes(), name="H. Chavez").json()
    assert (first["photos_enrolled"], first["photos_wanted"]) == (1, 3)
    assert "再拍 1 张" in first["advice"] and "模板" in first["advice"]
    second = _post(clients["admin"], "NEW-CHAVEZ", (chavez / "02.jpg").read_bytes()).json()
    assert second["photos_enrolled"] == 2 and second["advice"] == "" and second["duplicate_flag_ids"] == []
