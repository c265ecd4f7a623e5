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
from models.faces.match import Embeddings, person_distance
from models.verdicts import FlagKind
from server.audit.tables import AuditRecord
from server.flags.tables import Flag
from server.persons.face_index import FaceIndex
from server.persons.service import enrolled_vectors
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
    assert own.face_pending and [f.id for f in active] != [own.embedding_id] and len(active) == 1  # the old one


def _staff_replacement(db, seed: int):
    """A hospital's replacement of its inpatient's face by someone else's (synthetic) face, and the reviewers."""
    from models.faces.engines import SYNTHETIC
    from server.accounts.tables import Role
    from tests import factories

    world = factories.build_world(db, hospitals_n=1, patients_per_ward=["a"])
    person_id = world.patients["h1:a"].person_id
    number = db.get(InsuredPerson, person_id).insurance_number
    [patient_face] = enrolled_vectors(db, [person_id], engine=SYNTHETIC.tag)[person_id].vectors
    planted = SyntheticFaces(seed).identities(1)[0]
    photo = PhotoAnalysis(sha256="p" * 64, encoding=planted, thumbnail_jpeg=b"jpeg", engine_version=SYNTHETIC.tag)
    index = FaceIndex()
    result = enroll_photo(db, index=index, insurance_number=number, name="", photo=photo, source="desk",
                          actor="user:staff", duplicate_threshold=THRESHOLD, replace=True,
                          replace_reason="入院照片模糊", staff_hospital_id=world.hospital_ids[0])
    users = [factories.user(db, name, role) for name, role in (("rev", Role.REVIEWER), ("sup", Role.SUPERVISOR))]

    def matches(face: np.ndarray) -> bool:  # what a check of the person decides from their active faces
        enrolled = enrolled_vectors(db, [person_id], engine=SYNTHETIC.tag)[person_id]
        return person_distance(enrolled, Embeddings.of(SYNTHETIC.tag, face)) <= THRESHOLD

    return result, index, users, matches, patient_face, planted


def test_a_hospitals_replacement_waits_for_final_confirmation_by_two_bureau_reviewers(db) -> None:
    from server.console.service import detail_items
    from server.flags import workflow
    from server.flags.tables import FlagStatus

    result, index, (rev, sup), matches, patient_face, planted = _staff_replacement(db, 12)
    assert result.face_pending and result.replaced_flag_id is not None
    new = db.get(FaceEmbedding, result.embedding_id)
    assert not new.is_active and new.id not in {i for i, _ in index.search(planted)}  # not matched, not in 1:N
    assert matches(patient_face) and not matches(planted)  # verdicts unchanged: the planted face fails
    flag = db.get(Flag, result.replaced_flag_id)
    assert flag.details["pending_embedding_id"] == new.id and "deactivated_embedding_ids" not in flag.details
    assert dict(detail_items(db, sup, flag))["new_face"] == "new_face_pending"
    record = db.exec(select(AuditRecord).where(AuditRecord.action == "enrollment.face_replacement_pending")).one()
    assert record.data["flag_id"] == flag.id and record.data["pending_embedding_id"] == new.id

    workflow.review(db, flag=flag, to=FlagStatus.FIRST_REVIEWED, actor=rev, reason="evidence_clear")
    db.refresh(new)
    assert not new.is_active and matches(patient_face) and not matches(planted)  # a first review decides nothing
    workflow.review(db, flag=flag, to=FlagStatus.CONFIRMED, actor=sup, reason="evidence_clear")
    db.refresh(new)
    assert new.is_active and matches(planted) and not matches(patient_face)  # now the new face, alone
    assert flag.details["face_review"]["on"] == "activated"
    assert dict(detail_items(db, sup, flag))["new_face"] == "new_face_activated"
    done = db.exec(select(AuditRecord).where(AuditRecord.action == "enrollment.face_replacement_activated")).one()
    assert done.actor == f"user:{sup.id}" and done.data["flag_id"] == flag.id


def test_a_dismissed_hospital_replacement_leaves_the_new_face_inactive(db) -> None:
    from server.flags import workflow
    from server.flags.tables import FlagStatus

    result, _, (rev, sup), matches, patient_face, planted = _staff_replacement(db, 13)
    flag = db.get(Flag, result.replaced_flag_id)
    workflow.review(db, flag=flag, to=FlagStatus.FIRST_REVIEWED, actor=rev, reason="false_match")
    workflow.review(db, flag=flag, to=FlagStatus.DISMISSED, actor=sup, reason="false_match")
    assert not db.get(FaceEmbedding, result.embedding_id).is_active
    assert matches(patient_face) and not matches(planted)
    assert flag.details["face_review"]["on"] == "kept_inactive"
    assert db.exec(select(AuditRecord).where(
        AuditRecord.action == "enrollment.face_replacement_kept_inactive")).one().data["flag_id"] == flag.id


def test_an_upheld_appeal_against_a_confirmed_replacement_restores_the_earlier_face(db) -> None:
    from server.accounts.tables import Role
    from server.flags import appeals, workflow
    from server.flags.tables import FlagStatus
    from tests import factories

    result, _, (rev, sup), matches, patient_face, planted = _staff_replacement(db, 14)
    flag = db.get(Flag, result.replaced_flag_id)
    workflow.review(db, flag=flag, to=FlagStatus.FIRST_REVIEWED, actor=rev, reason="evidence_clear")
    workflow.review(db, flag=flag, to=FlagStatus.CONFIRMED, actor=sup, reason="evidence_clear")
    assert matches(planted) and not matches(patient_face)
    staff = factories.user(db, "staff", Role.HOSPITAL_STAFF, hospital_id=flag.hospital_id)
    appeals.file_appeal(db, flag=flag, actor=staff, statement="照片拍错了人", uploads=[])
    # The appeal is decided by a third person, neither the first reviewer nor the confirmer.
    third = factories.user(db, "sup3", Role.SUPERVISOR)
    workflow.review(db, flag=flag, to=FlagStatus.DISMISSED, actor=third, reason="appeal_accepted")
    assert matches(patient_face) and not matches(planted)  # the earlier face back, the new one retired
    assert flag.details["face_review"]["on"] == "reverted"


def test_a_face_hospital_staff_add_beside_the_patients_waits_for_review_too(db) -> None:
    """Added without `replace`, a planted face would match with the patient's (the mean of the distances):
    it waits, inactive, for the bureau's final confirmation, which adds it and retires nothing."""
    from models.faces.engines import SYNTHETIC
    from server.accounts.tables import Role
    from server.flags import workflow
    from server.flags.tables import FlagStatus
    from tests import factories

    world = factories.build_world(db, hospitals_n=1, patients_per_ward=["a"])
    person_id = world.patients["h1:a"].person_id
    number = db.get(InsuredPerson, person_id).insurance_number
    [patient_face] = enrolled_vectors(db, [person_id], engine=SYNTHETIC.tag)[person_id].vectors
    planted = SyntheticFaces(21).identities(1)[0]
    photo = PhotoAnalysis(sha256="q" * 64, encoding=planted, thumbnail_jpeg=b"jpeg", engine_version=SYNTHETIC.tag)
    added = enroll_photo(db, index=FaceIndex(), insurance_number=number, name="", photo=photo, source="desk",
                         actor="user:staff", duplicate_threshold=THRESHOLD, staff_hospital_id=world.hospital_ids[0])
    new = db.get(FaceEmbedding, added.embedding_id)
    assert added.face_pending and not new.is_active
    enrolled = enrolled_vectors(db, [person_id], engine=SYNTHETIC.tag)[person_id]
    assert len(enrolled) == 1 and person_distance(enrolled, Embeddings.of(SYNTHETIC.tag, planted)) > THRESHOLD
    flag = db.get(Flag, added.replaced_flag_id)
    assert flag.kind == FlagKind.FACE_REPLACED and flag.details["addition"] is True
    rev, sup = (factories.user(db, name, role) for name, role in (("rev2", Role.REVIEWER), ("sup2", Role.SUPERVISOR)))
    workflow.review(db, flag=flag, to=FlagStatus.FIRST_REVIEWED, actor=rev, reason="evidence_clear")
    workflow.review(db, flag=flag, to=FlagStatus.CONFIRMED, actor=sup, reason="evidence_clear")
    active = db.exec(select(FaceEmbedding.id).where(FaceEmbedding.insured_person_id == person_id,
                                                    FaceEmbedding.is_active == True)).all()  # noqa: E712
    assert new.id in active and len(active) == 2 and patient_face is not None  # added beside, nothing retired
