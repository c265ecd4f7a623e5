"""Insured persons and their enrolled face embeddings."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from sqlmodel import Session, col, select

from models.faces.match import Embeddings
from models.names import clean_name
from server.persons.tables import FaceEmbedding, InsuredPerson, StaffMember

EMBEDDING_DTYPE = np.dtype("<f4")


def vector_to_bytes(vector: np.ndarray | list[float]) -> bytes:
    return np.asarray(vector, dtype=EMBEDDING_DTYPE).tobytes()


def bytes_to_vector(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=EMBEDDING_DTYPE).astype(np.float64)


def get_or_create_person(db: Session, *, insurance_number: str, name: str) -> tuple[InsuredPerson, bool]:
    """The person with this insurance number (name updated), or a new one; flushes.

    The name passes the one name rule (models/names.py) here, whatever the entry: a bidi override or a
    control character refuses it (NameRefused), invisible characters are removed."""
    name = clean_name(name).value if name else name
    person = db.exec(select(InsuredPerson).where(InsuredPerson.insurance_number == insurance_number)).first()
    if person:
        if name and person.name != name:
            person.name = name
        return person, False
    person = InsuredPerson(insurance_number=insurance_number, name=name)
    db.add(person)
    db.flush()
    return person, True


def add_embedding(db: Session, *, person_id: int, vector: np.ndarray | list[float], source: str,
                  engine_version: str, photo_sha256: str = "", thumbnail_jpeg: bytes | None = None,
                  chip_jpeg: bytes | None = None, reencoded_from_id: int | None = None) -> FaceEmbedding:
    """Enrolls one face for a person (earlier ones stay active: several photos per person)."""
    row = FaceEmbedding(insured_person_id=person_id, vector=vector_to_bytes(vector), source=source,
                        engine_version=engine_version, photo_sha256=photo_sha256, thumbnail_jpeg=thumbnail_jpeg,
                        chip_jpeg=chip_jpeg, reencoded_from_id=reencoded_from_id)
    db.add(row)
    db.flush()
    return row


def add_staff_embedding(db: Session, *, hospital_id: int, staff_number: str, name: str,
                        vector: np.ndarray | list[float], source: str, engine_version: str,
                        thumbnail_jpeg: bytes | None = None, chip_jpeg: bytes | None = None) -> FaceEmbedding:
    """Adds a face to the staff gallery (staff are searched when a bed shows someone else); flushes."""
    staff = db.exec(select(StaffMember).where(StaffMember.hospital_id == hospital_id,
                                              StaffMember.staff_number == staff_number)).first()
    if staff is None:
        staff = StaffMember(hospital_id=hospital_id, staff_number=staff_number, name=clean_name(name).value)
        db.add(staff)
        db.flush()
    row = FaceEmbedding(staff_member_id=staff.id, vector=vector_to_bytes(vector), source=source,
                        engine_version=engine_version, thumbnail_jpeg=thumbnail_jpeg, chip_jpeg=chip_jpeg)
    db.add(row)
    db.flush()
    return row


def enrolled_vectors(db: Session, person_ids: list[int], *, engine: str) -> dict[int, Embeddings]:
    """Active enrolled embeddings of one engine (its tag) per person id; other engines' rows are not read."""
    found: dict[int, list[np.ndarray]] = defaultdict(list)
    if not person_ids:
        return {}
    rows = db.exec(
        select(FaceEmbedding.insured_person_id, FaceEmbedding.vector)
        .where(col(FaceEmbedding.insured_person_id).in_(person_ids), FaceEmbedding.is_active == True,  # noqa: E712
               FaceEmbedding.engine_version == engine)
    )
    for person_id, vector in rows:
        found[int(person_id)].append(bytes_to_vector(vector))
    return {pid: Embeddings(engine, np.stack(vectors)) for pid, vectors in found.items()}
