"""Duplicate identity: the same face under two insurance numbers is flagged once, for review, with ids and the
distance only; different people and a person's own photos are not. Synthetic encodings: no real faces needed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlmodel import select

from enrollment.analyse import PhotoAnalysis
from enrollment.service import enroll_photo
from enrollment.synthetic import SyntheticFaces
from models.errors import InvalidInput, NotFound
from models.verdicts import FlagKind
from server.audit.tables import AuditRecord
from server.flags.tables import Flag
from server.persons.face_index import FaceIndex
from server.persons.tables import FaceEmbedding, InsuredPerson

THRESHOLD = 0.4


def _photo(vector: np.ndarray, tag: str) -> PhotoAnalysis:
    return PhotoAnalysis(sha256=tag * 64, encoding=np.asarray(vector, dtype=np.float64), thumbnail_jpeg=b"jpeg")


def _enroll(db, index, number: str, vector: np.ndarray, tag: str, name_override: str | None = None, **kw):
    return enroll_photo(db, index=index, insurance_number=number, name=name_override or number,
                        photo=_photo(vector, tag), source="test", actor="test", duplicate_threshold=THRESHOLD, **kw)


def test_same_face_under_two_insurance_numbers_is_flagged_once_and_different_people_are_not(db) -> None:
    faces = SyntheticFaces(7)
    people = faces.identities(50)
    index = FaceIndex()
    for i, face in enumerate(people):
        assert _enroll(db, index, f"P{i:02d}", face, f"{i % 10}").flag_ids == []  # 50 different people

    same_face = people[7] + 0.01  # the same face photographed again, under someone else's number
    fraud = _enroll(db, index, "FRAUD-1", same_face, "a")
    assert len(fraud.flag_ids) == 1 and fraud.duplicates[0].insurance_number == "P07"

    flag = db.get(Flag, fraud.flag_ids[0])
    assert flag.kind == FlagKind.DUPLICATE_IDENTITY and flag.hospital_id is None
    assert flag.insured_person_id == fraud.person_id
    assert set(flag.details) == {"insured_person_id", "insurance_number", "embedding_id", "other_insured_person_id",
                                 "other_insurance_number", "other_embedding_id", "distance", "threshold"}
    assert 0 < flag.details["distance"] < THRESHOLD
    assert len(json.dumps(flag.details)) < 400  # ids and a distance, no vector

    again = _enroll(db, index, "FRAUD-1", people[7] - 0.01, "b")  # a second photo of the same pair
    assert again.embedding_id is not None and again.flag_ids == []
    assert len(db.exec(select(Flag).where(Flag.kind == FlagKind.DUPLICATE_IDENTITY)).all()) == 1


def test_a_persons_own_photos_and_a_rerun_raise_nothing(db) -> None:
    faces = SyntheticFaces(8)
    face = faces.identities(1)[0]
    index = FaceIndex()
    first = _enroll(db, index, "SELF", face, "a")
    second = _enroll(db, index, "SELF", face + 0.005, "b")
    rerun = _enroll(db, index, "SELF", face, "a")  # same sha256 for the same person
    assert first.flag_ids == second.flag_ids == [] and rerun.already_enrolled
    assert len(db.exec(select(FaceEmbedding)).all()) == 2
    assert db.exec(select(Flag)).all() == []


def test_replace_keeps_history_inactive_and_inactive_faces_no_longer_match(db) -> None:
    faces = SyntheticFaces(9)
    old, new = faces.identities(2)
    index = FaceIndex()
    _enroll(db, index, "R-1", old, "a")
    replaced = _enroll(db, index, "R-1", new, "b", replace=True, replace_reason="面部手术后外貌改变")
    rows = db.exec(select(FaceEmbedding).order_by(FaceEmbedding.id)).all()
    assert [r.is_active for r in rows] == [False, True]  # history kept, only the new face checked against
    assert _enroll(db, index, "R-2", old, "c").flag_ids == []  # the retired face flags nobody
    # Never a silent swap: a review flag and an audit record name the reason and both faces.
    flag = db.get(Flag, replaced.replaced_flag_id)
    assert flag.kind == FlagKind.FACE_REPLACED and flag.insured_person_id == replaced.person_id
    assert flag.details["deactivated_embedding_ids"] == [rows[0].id]
    assert flag.details["new_embedding_id"] == rows[1].id and flag.details["replace_reason"] == "面部手术后外貌改变"
    record = db.exec(select(AuditRecord).where(AuditRecord.action == "enrollment.face_replaced")).one()
    assert record.object_id == str(replaced.person_id) and record.data["flag_id"] == flag.id


def test_a_replacement_without_a_reason_is_refused_and_changes_nothing(db) -> None:
    old, new = SyntheticFaces(10).identities(2)
    index = FaceIndex()
    _enroll(db, index, "R-3", old, "a")
    with pytest.raises(InvalidInput) as refused:
        _enroll(db, index, "R-3", new, "b", replace=True, replace_reason="  ")
    assert refused.value.details["field"] == "reason"
    db.rollback()
    assert [r.is_active for r in db.exec(select(FaceEmbedding))] == [True]


def test_hospital_staff_replace_only_their_own_inpatients_faces_in_the_service_too(db) -> None:
    from tests import factories

    world = factories.build_world(db, hospitals_n=2, patients_per_ward=["a"])
    number = db.get(InsuredPerson, world.patients["h1:a"].person_id).insurance_number
    new = SyntheticFaces(11).identities(1)[0]
    index = FaceIndex()
    with pytest.raises(NotFound):  # another hospital's inpatient, whatever path calls the service
        _enroll(db, index, number, new, "b", replace=True, replace_reason="新照片",
                staff_hospital_id=world.hospital_ids[1])
    db.rollback()
    own = _enroll(db, index, number, new, "c", name_override="别人的名字", replace=True, replace_reason="新照片",
                  staff_hospital_id=world.hospital_ids[0])
    flag = db.get(Flag, own.replaced_flag_id)
    assert flag.hospital_id == world.hospital_ids[0] and flag.admission_id == world.patients["h1:a"].admission_id
    assert db.get(InsuredPerson, own.person_id).name == "患者a"  # the desk never renames
    active = db.exec(select(FaceEmbedding).where(FaceEmbedding.insured_person_id == own.person_id,
                                                 FaceEmbedding.is_active == True)).all()  # noqa: E712
    assert [f.id for f in active] == [own.embedding_id]  # one active face, the new one: never none
