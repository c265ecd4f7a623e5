"""Duplicate identity (one face under two insurance numbers): 1:N search of a new face, and its flag.

The index proposes neighbours; each is re-checked against the database (active, enrolled to another
insured person) and judged by the one matching rule (`person_distance` over all the person's photos of the
same engine) before it counts. Flag details carry ids, insurance numbers and the distance only: never
an embedding or a photo. One open flag per pair of persons, however many photos of them match.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlmodel import Session, col, select

from models.faces.engines import UNIT_LENGTH_TAGS
from models.faces.match import Embeddings, person_distance
from models.faces.templates import candidate_radius
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
    embedding_id: int  # the other person's photo nearest to the new face
    distance: float  # person_distance: to the other person's template (models/faces/match.py)


@dataclass(frozen=True)
class Candidate:
    insured_person_id: int
    insurance_number: str
    nearest_embedding_id: int
    embeddings: Embeddings  # every active enrolled embedding of the person, of the index's engine


def candidate_persons(db: Session, *, index: FaceIndex, vector: np.ndarray, person_id: int | None,
                      threshold: float) -> list[Candidate]:
    """Other insured persons with a photo within `threshold`, with all their photos, for `person_distance`.

    The index ranks single photos; the matching rule compares with the person's template, which can lie nearer
    the probe than any one photo, so the index is asked within `candidate_radius(threshold)`, the distance
    within which one photo of every person whose template matches must lie (models/faces/templates.py).
    """
    k = NEIGHBOURS
    radius = candidate_radius(threshold, unit=index.engine in UNIT_LENGTH_TAGS)
    while True:
        found = index.search(vector, k)
        candidates = _candidates(db, index.engine, found, vector, person_id, radius)
        # A person with many photos can fill every neighbour slot; widen once the slots are all theirs.
        if candidates or len(found) < k or any(d > radius for _, d in found) or k >= NEIGHBOURS * 16:
            return candidates
        k *= 4


def find_duplicates(db: Session, *, index: FaceIndex, vector: np.ndarray, person_id: int | None,
                    threshold: float, max_matches: int = MAX_MATCHES) -> list[DuplicateMatch]:
    """Other insured persons whose enrolled faces are within `threshold` of `vector` (person_distance), nearest
    first."""
    probe = Embeddings.of(index.engine or "", vector)
    matches = []
    for candidate in candidate_persons(db, index=index, vector=vector, person_id=person_id, threshold=threshold):
        distance = person_distance(candidate.embeddings, probe)
        if distance <= threshold:
            matches.append(DuplicateMatch(candidate.insured_person_id, candidate.insurance_number,
                                          candidate.nearest_embedding_id, round(distance, 4)))
    return sorted(matches, key=lambda m: m.distance)[:max_matches]


def _candidates(db: Session, engine: str | None, found: list[tuple[int, float]], vector: np.ndarray,
                person_id: int | None, threshold: float) -> list[Candidate]:
    near = [eid for eid, distance in found if distance <= threshold + 1e-4]
    if not near:
        return []
    # Exact distances from the stored rows: the DB, not the index file, is the evidence.
    rows = db.exec(select(FaceEmbedding.id, FaceEmbedding.insured_person_id, FaceEmbedding.vector)
                   .where(col(FaceEmbedding.id).in_(near), FaceEmbedding.is_active == True)).all()  # noqa: E712
    nearest: dict[int, tuple[float, int]] = {}
    for embedding_id, other_id, stored in rows:
        if other_id is None or other_id == person_id:
            continue
        distance = float(np.linalg.norm(bytes_to_vector(stored) - np.asarray(vector, dtype=np.float64)))
        if distance <= threshold and (other_id not in nearest or distance < nearest[other_id][0]):
            nearest[int(other_id)] = (distance, int(embedding_id))
    if not nearest:
        return []
    where = [col(FaceEmbedding.insured_person_id).in_(list(nearest)), FaceEmbedding.is_active == True]  # noqa: E712
    if engine is not None:
        where.append(FaceEmbedding.engine_version == engine)
    photos: dict[int, list[np.ndarray]] = {}
    numbers: dict[int, str] = {}
    for other_id, stored, number in db.exec(
            select(FaceEmbedding.insured_person_id, FaceEmbedding.vector, InsuredPerson.insurance_number)
            .join(InsuredPerson, col(InsuredPerson.id) == col(FaceEmbedding.insured_person_id)).where(*where)):
        photos.setdefault(int(other_id), []).append(bytes_to_vector(stored))
        numbers[int(other_id)] = number
    return [Candidate(pid, numbers[pid], nearest[pid][1], Embeddings(engine or "", np.stack(vectors)))
            for pid, vectors in photos.items()]


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
