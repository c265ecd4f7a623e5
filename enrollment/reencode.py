"""`bedcheck enroll reencode --engine NAME`: change face engine without re-photographing a county.

Enrollment keeps, beside each embedding, the face chip (the evidence-size crop the engine found the face in,
under the same privacy settings as the embedding). Re-encoding reads each active enrolled face (insured
persons and the staff gallery) that has a chip and no embedding of the target engine yet, embeds the chip
with the target engine on every core, and adds a row of that engine (`reencoded_from_id` = the row whose
chip it read); the rows of every engine stay active and each engine reads only its own. Then the target
engine's 1:N index is rebuilt.

Resumable: each re-encoded face is committed in its own transaction, and a face is skipped when its origin
(the row first enrolled from a photo) already has a row of the target engine, so a rerun after a crash does
only what is left and never adds a face twice. Faces enrolled before chips were kept cannot be re-encoded:
they are reported by person (insurance or staff number) as needing new photos, not silently dropped; a chip
in which the target engine finds no face is listed in the rejects CSV.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from enrollment.parallel import run_bounded
from models.errors import BedcheckError
from models.faces.decode import decode_image
from models.faces.engine import FaceEngine
from models.settings import EngineSettings
from server.persons.face_index import load_or_rebuild
from server.persons.service import vector_to_bytes
from server.persons.tables import FaceEmbedding, InsuredPerson, StaffMember

log = logging.getLogger("bedcheck.enrollment")

REJECT_COLUMNS = ["kind", "number", "embedding_id", "code", "message"]


@dataclass
class ReencodeSummary:
    engine: str
    engine_version: str
    faces: int = 0  # active enrolled faces of other engines that were looked at
    reencoded: int = 0
    already_done: int = 0
    rejected: int = 0
    without_chip: int = 0
    # People whose faces were enrolled before chips were kept: they need new photos for the target engine.
    needs_new_photos: list[dict[str, str]] = field(default_factory=list)
    index_embeddings: int = 0
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class _Face:
    id: int  # the active row found first for the origin
    origin_id: int  # the row enrolled from a photo, which holds the chip
    kind: str  # insured_person | staff
    owner_id: int
    number: str


# --- worker-process side ------------------------------------------------------------------------------
_worker_engine: FaceEngine | None = None


def _init_worker(settings_json: str) -> None:
    global _worker_engine
    _worker_engine = FaceEngine(EngineSettings.model_validate_json(settings_json))


def _encode_chip(chip_jpeg: bytes) -> tuple[list[float] | None, str, str]:
    """The target engine's embedding of the face in a chip, or (None, code, message)."""
    assert _worker_engine is not None
    try:
        encoding, _ = _worker_engine.encode_crop(decode_image(chip_jpeg, _worker_engine.settings))
    except BedcheckError as e:
        return None, e.code.value, e.message
    return [float(x) for x in encoding], "", ""


# --- parent side --------------------------------------------------------------------------------------
def reencode_gallery(engine: Engine, target: EngineSettings, *, index_path: Path, rejects_path: Path,
                     workers: int, show_progress: bool = True) -> ReencodeSummary:
    """Re-embeds every enrolled face (insured persons and staff) with `target`'s engine; see the module doc."""
    started = time.perf_counter()
    tag = target.engine_tag
    summary = ReencodeSummary(engine=target.engine.value, engine_version=tag)
    rejects_path.parent.mkdir(parents=True, exist_ok=True)
    with Session(engine, expire_on_commit=False) as db, open(rejects_path, "w", newline="", encoding="utf-8") as out:
        report = csv.writer(out)
        report.writerow(REJECT_COLUMNS)
        todo, missing = _pending(db, tag, summary)
        for face in missing:
            report.writerow([face.kind, face.number, face.id, "no_face_chip",
                             "enrolled before face chips were kept: needs a new photo"])
        summary.needs_new_photos = _people(missing)
        out.flush()
        with _progress(show_progress, len(todo)) as progress:
            task = progress.add_task(f"re-encoding ({summary.engine})", total=len(todo))
            for face, (vector, code, message) in _encoded(db, todo, workers, target):
                if vector is None:
                    report.writerow([face.kind, face.number, face.id, code, message])
                    out.flush()
                    summary.rejected += 1
                else:
                    _store(db, face, vector, tag)
                    summary.reencoded += 1
                progress.advance(task)
        index, how = load_or_rebuild(db, index_path, engine=tag)
        summary.index_embeddings = len(index)
        log.info("face index (%s) %s: %d embeddings", summary.engine, how, len(index))
    summary.elapsed_s = round(time.perf_counter() - started, 2)
    return summary


def _pending(db: Session, tag: str, summary: ReencodeSummary) -> tuple[list[_Face], list[_Face]]:
    """Faces to re-encode (with a chip) and faces that cannot be (no chip), neither done for `tag` yet."""
    rows = db.exec(select(FaceEmbedding.id, FaceEmbedding.reencoded_from_id, FaceEmbedding.engine_version,
                          FaceEmbedding.insured_person_id, FaceEmbedding.staff_member_id,
                          col(FaceEmbedding.chip_jpeg).is_not(None))
                   .where(FaceEmbedding.is_active == True).order_by(col(FaceEmbedding.id))).all()  # noqa: E712
    # An origin is done when it is itself of the target engine or a row of that engine was made from it.
    done = {origin or own for own, origin, engine, *_ in rows if engine == tag}
    numbers = _numbers(db, rows)
    todo: list[_Face] = []
    missing: list[_Face] = []
    seen: set[int] = set()
    for own, origin, engine, person_id, staff_id, has_chip in rows:
        start = origin or own
        if engine == tag or start in seen:
            continue  # the target's own rows, or another engine's copy of an origin already counted
        seen.add(start)
        summary.faces += 1
        if start in done:
            summary.already_done += 1
            continue
        kind, owner = ("insured_person", person_id) if person_id is not None else ("staff", staff_id)
        face = _Face(own, start, kind, int(owner or 0), numbers.get((kind, int(owner or 0)), ""))
        (todo if has_chip else missing).append(face)
    summary.without_chip = len(missing)
    return todo, missing


def _numbers(db: Session, rows: list) -> dict[tuple[str, int], str]:  # type: ignore[type-arg]
    persons = {r[3] for r in rows if r[3] is not None}
    staff = {r[4] for r in rows if r[4] is not None}
    found: dict[tuple[str, int], str] = {}
    if persons:
        found |= {("insured_person", int(i)): n for i, n in db.exec(
            select(InsuredPerson.id, InsuredPerson.insurance_number).where(col(InsuredPerson.id).in_(persons)))}
    if staff:
        found |= {("staff", int(i)): n for i, n in db.exec(
            select(StaffMember.id, StaffMember.staff_number).where(col(StaffMember.id).in_(staff)))}
    return found


def _people(missing: list[_Face]) -> list[dict[str, str]]:
    """Each person (or staff member) with a face that has no chip, once, with how many such faces."""
    counts: dict[tuple[str, str], int] = {}
    for face in missing:
        counts[(face.kind, face.number)] = counts.get((face.kind, face.number), 0) + 1
    return [{"kind": kind, "number": number, "faces": str(n)} for (kind, number), n in sorted(counts.items())]


def _encoded(db: Session, todo: list[_Face], workers: int, target: EngineSettings,
             ) -> Iterator[tuple[_Face, tuple[list[float] | None, str, str]]]:
    """Chips embedded on `workers` processes, a bounded number in flight (chips are read as they are sent)."""
    def with_chip(face: _Face) -> tuple[Callable[..., tuple[list[float] | None, str, str]], tuple[Any, ...]]:
        chip = db.exec(select(FaceEmbedding.chip_jpeg).where(FaceEmbedding.id == face.origin_id)).one()
        return _encode_chip, (chip,)

    yield from run_bounded(todo, with_chip, workers=workers, initializer=_init_worker,
                           initargs=(target.model_dump_json(),))


def _store(db: Session, face: _Face, vector: list[float], tag: str) -> None:
    """One re-encoded face, in its own transaction (what makes a run resumable after a crash)."""
    origin = db.get(FaceEmbedding, face.origin_id)
    assert origin is not None
    # The chip stays on the origin row only (one copy of the pixels, whatever the number of engines).
    db.add(FaceEmbedding(insured_person_id=origin.insured_person_id, staff_member_id=origin.staff_member_id,
                         vector=vector_to_bytes(np.asarray(vector)), source=f"reencode:{origin.source}"[:80],
                         engine_version=tag, photo_sha256=origin.photo_sha256, thumbnail_jpeg=origin.thumbnail_jpeg,
                         reencoded_from_id=face.origin_id))
    db.commit()


def _progress(show: bool, total: int) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not show or total == 0)
