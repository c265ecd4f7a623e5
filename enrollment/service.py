"""Enrolling one analysed photo for one insured person: the transaction bulk runs and the desk share.

History: embeddings are never deleted. Every accepted photo adds an active row (several photos per
person); `replace=True` (re-enrollment after a change of appearance) deactivates the person's earlier
active rows once the new one is stored, which stay in the table, with their thumbnails, for reviewers and
earlier evidence. A replacement needs a reason, is audited and raises a review flag; hospital staff replace
only for their own current inpatients, and theirs waits (inactive) for that flag's confirmation
(server/persons/replacement.py). Checks compare against active rows
only (server/persons/service.py `enrolled_vectors`).

A photo whose sha256 is already enrolled for the person (active or not) is skipped: reruns are no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, col, select

from enrollment.analyse import PhotoAnalysis
from models.errors import EngineMismatch
from server.audit import service as audit
from server.persons import replacement
from server.persons.duplicates import DuplicateMatch, find_duplicates, flag_duplicates
from server.persons.face_index import FaceIndex, catch_up
from server.persons.service import add_embedding, get_or_create_person
from server.persons.tables import FaceEmbedding, InsuredPerson


@dataclass
class EnrollResult:
    person_id: int
    person_created: bool
    embedding_id: int | None  # None: this photo was already enrolled for the person
    duplicates: list[DuplicateMatch] = field(default_factory=list)
    flag_ids: list[int] = field(default_factory=list)
    replaced_flag_id: int | None = None  # the review flag of a replacement that deactivated earlier faces
    face_pending: bool = False  # the new face waits for the replacement flag's confirmation (hospital staff)

    @property
    def already_enrolled(self) -> bool:
        return self.embedding_id is None


def enrolled_photo_hashes(db: Session, insurance_numbers: list[str]) -> set[tuple[str, str]]:
    """(insurance number, photo sha256) pairs already enrolled, for the numbers given."""
    found: set[tuple[str, str]] = set()
    for start in range(0, len(insurance_numbers), 500):
        chunk = insurance_numbers[start:start + 500]
        rows = db.exec(select(InsuredPerson.insurance_number, FaceEmbedding.photo_sha256)
                       .join(FaceEmbedding, col(FaceEmbedding.insured_person_id) == col(InsuredPerson.id))
                       .where(col(InsuredPerson.insurance_number).in_(chunk)))
        found.update((number, sha) for number, sha in rows)
    return found


def enroll_photo(db: Session, *, index: FaceIndex, insurance_number: str, name: str, photo: PhotoAnalysis,
                 source: str, actor: str, duplicate_threshold: float, replace: bool = False,
                 replace_reason: str = "", staff_hospital_id: int | None = None,
                 photo_bytes: bytes | None = None, photo_dir: Path | None = None) -> EnrollResult:
    """Enrolls an accepted photo in one transaction (person, embedding, flags, audit) and commits.

    The index learns the new row only after the commit, so it never holds a face the DB does not.
    `photo_bytes` + `photo_dir`: keep the full photo (content-addressed file), when the setting says so.
    `staff_hospital_id`: the desk is hospital staff's (they never rename a person nor create one).
    """
    if photo.encoding is None:
        raise ValueError("only an accepted photo can be enrolled")
    if index.engine is not None and index.engine != photo.engine_version:
        raise EngineMismatch("the face index holds another engine's embeddings", index_engine=index.engine,
                             photo_engine=photo.engine_version)
    if replace:
        known = db.exec(select(InsuredPerson.id).where(InsuredPerson.insurance_number == insurance_number)).first()
        replace_reason = replacement.check_replacement(db, person_id=known, reason=replace_reason,
                                                       staff_hospital_id=staff_hospital_id)
    person, created = get_or_create_person(db, insurance_number=insurance_number,
                                           name="" if staff_hospital_id is not None else name)
    person_id = person.id or 0
    if not created and db.exec(select(FaceEmbedding.id).where(
            FaceEmbedding.insured_person_id == person_id, FaceEmbedding.photo_sha256 == photo.sha256)).first():
        db.commit()
        return EnrollResult(person_id, False, None)
    catch_up(db, index)  # rows other processes enrolled meanwhile
    matches = find_duplicates(db, index=index, vector=photo.encoding, person_id=person_id,
                              threshold=duplicate_threshold)
    if photo_bytes is not None and photo_dir is not None:
        keep_photo(photo_dir, photo.sha256, photo_bytes)
    row = add_embedding(db, person_id=person_id, vector=photo.encoding, source=source[:80],
                        engine_version=photo.engine_version, photo_sha256=photo.sha256,
                        thumbnail_jpeg=photo.thumbnail_jpeg, chip_jpeg=photo.chip_jpeg)
    flag_ids = flag_duplicates(db, person=person, embedding_id=row.id or 0, matches=matches,
                               threshold=duplicate_threshold)
    if replace:
        replaced_flag = replacement.replace_faces(
            db, person_id=person_id, new_embedding_id=row.id or 0, reason=replace_reason, actor=actor,
            staff_hospital_id=staff_hospital_id)
    elif staff_hospital_id is not None:
        # A second face added beside the patient's would match a planted impostor too (the mean of the
        # distances): hospital staff's additions wait for the bureau's review like their replacements.
        replaced_flag = replacement.hold_addition(db, person_id=person_id, new_embedding_id=row.id or 0,
                                                  actor=actor, staff_hospital_id=staff_hospital_id)
    else:
        replaced_flag = None
    audit.record(db, actor=actor, action="enrollment.photo", object_type="insured_person", object_id=person_id,
                 data={"embedding_id": row.id, "replaced": replace, "duplicate_flag_ids": flag_ids})
    pending = not row.is_active
    db.commit()
    if not pending:  # a pending face joins the index only by a rebuild once confirmed: never searched before
        index.add_one(row.id or 0, photo.encoding)
    return EnrollResult(person_id, created, row.id, matches, flag_ids, replaced_flag, pending)


def keep_photo(photo_dir: Path, sha256: str, data: bytes) -> Path:
    """Stores the full photo under its hash (atomic; an orphan after a crash is harmless and reused)."""
    path = photo_dir / sha256[:2] / f"{sha256}.img"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path
