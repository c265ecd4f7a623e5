"""Duplicate identity (one face under two insurance numbers): 1:N search of a new face, and its flag.

The index proposes neighbours; each is re-checked against the database (active, enrolled to another
insured person) before it counts. Flag details carry ids, insurance numbers and the distance only: never
an embedding or a photo. One open flag per pair of persons, however many photos of them match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlmodel import Session, col, select

from models.verdicts import FlagKind
from server.flags import service as flag_service
from server.flags.tables import Flag
from server.persons.face_index import FaceIndex
from server.persons.service import bytes_to_vector
from server.persons.tables import FaceEmbedding, InsuredPerson

NEIGHBOURS = 16
MAX_MATCHES = 3


@dataclass(frozen=True)
class DuplicateMatch:
    insured_person_id: int
    insurance_number: str
    embedding_id: int
    distance: float


def find_duplicates(db: Session, *, index: FaceIndex, vector: np.ndarray, person_id: int | None,
                    threshold: float, max_matches: int = MAX_MATCHES) -> list[DuplicateMatch]:
    """Other insured persons whose enrolled face is within `threshold` of `vector`, nearest first."""
    k = NEIGHBOURS
    while True:
        found = index.search(vector, k)
        matches = _verified(db, found, vector, person_id, threshold)
        # A person with many photos can fill every neighbour slot; widen once the slots are all theirs.
        if matches or len(found) < k or any(d > threshold for _, d in found) or k >= NEIGHBOURS * 16:
            return matches[:max_matches]
        k *= 4


def _verified(db: Session, found: list[tuple[int, float]], vector: np.ndarray, person_id: int | None,
              threshold: float) -> list[DuplicateMatch]:
    candidates = [eid for eid, distance in found if distance <= threshold + 1e-4]
    if not candidates:
        return []
    rows = db.exec(
        select(FaceEmbedding.id, FaceEmbedding.insured_person_id, FaceEmbedding.vector, InsuredPerson.insurance_number)
        .join(InsuredPerson, col(InsuredPerson.id) == col(FaceEmbedding.insured_person_id))
        .where(col(FaceEmbedding.id).in_(candidates), FaceEmbedding.is_active == True)  # noqa: E712
    ).all()
    best: dict[int, DuplicateMatch] = {}
    for embedding_id, other_id, stored, number in rows:
        if other_id == person_id:
            continue
        # Exact distance from the stored row: the DB, not the index file, is the evidence.
        distance = float(np.linalg.norm(bytes_to_vector(stored) - np.asarray(vector, dtype=np.float64)))
        if distance <= threshold and (other_id not in best or distance < best[other_id].distance):
            best[other_id] = DuplicateMatch(int(other_id), number, int(embedding_id), round(distance, 4))
    return sorted(best.values(), key=lambda m: m.distance)


def flag_duplicates(db: Session, *, person: InsuredPerson, embedding_id: int, matches: list[DuplicateMatch],
                    threshold: float) -> list[int]:
    """Raises one DUPLICATE_IDENTITY flag per newly matched pair of persons; flushes; returns flag ids."""
    if not matches:
        return []
    pairs = _flagged_pairs(db, [person.id or 0] + [m.insured_person_id for m in matches])
    raised = []
    for match in matches:
        pair = frozenset((person.id or 0, match.insured_person_id))
        if pair in pairs:
            continue
        flag = flag_service.raise_flag(db, kind=FlagKind.DUPLICATE_IDENTITY, hospital_id=None, details={
            "insured_person_id": person.id, "insurance_number": person.insurance_number,
            "embedding_id": embedding_id,
            "other_insured_person_id": match.insured_person_id,
            "other_insurance_number": match.insurance_number,
            "other_embedding_id": match.embedding_id,
            "distance": match.distance, "threshold": threshold,
        })
        flag.insured_person_id = person.id
        db.add(flag)
        db.flush()
        pairs.add(pair)
        raised.append(flag.id or 0)
    return raised


def _flagged_pairs(db: Session, person_ids: list[int]) -> set[frozenset[int]]:
    flags = db.exec(select(Flag).where(Flag.kind == FlagKind.DUPLICATE_IDENTITY,
                                       col(Flag.insured_person_id).in_(person_ids))).all()
    pairs = set()
    for flag in flags:
        a, b = flag.details.get("insured_person_id"), flag.details.get("other_insured_person_id")
        if isinstance(a, int) and isinstance(b, int):
            pairs.add(frozenset((a, b)))
    return pairs
