"""Bulk enrollment: photos analysed on every core, each accepted photo committed in its own transaction.

Resumable: photos whose sha256 is already enrolled for their person are skipped before any face work, so
a rerun (or a run after a crash) only does what is left. The parent process alone writes to the DB and the
index; workers only look at pixels. The rejects report lists every photo refused, with its reason code.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy.engine import Engine
from sqlmodel import Session

from enrollment.analyse import PhotoAnalysis, analyse_file, init_worker, sha256_of
from enrollment.parallel import run_bounded
from enrollment.service import enroll_photo, enrolled_photo_hashes
from enrollment.sources import PhotoJob, SourceReject
from models.errors import NameRefused, ReasonCode
from models.settings import EngineSettings
from server.persons.face_index import IndexParams, load_or_rebuild

log = logging.getLogger("bedcheck.enrollment")

REJECT_COLUMNS = ["line", "insurance_number", "photo", "code", "message"]


@dataclass(frozen=True)
class EnrollmentOptions:
    index_path: Path
    rejects_path: Path
    workers: int = os.cpu_count() or 1
    replace: bool = False
    replace_reason: str = ""  # required with `replace` (server/persons/replacement.py)
    photo_dir: Path | None = None  # keep full photos here; None drops them
    actor: str = "cli:enroll"
    show_progress: bool = True
    index_params: IndexParams = field(default_factory=IndexParams)


@dataclass
class EnrollmentSummary:
    seen: int = 0
    enrolled: int = 0
    skipped: int = 0
    rejected: int = 0
    persons_created: int = 0
    duplicate_flags: int = 0
    elapsed_s: float = 0.0
    rejects_by_code: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "images_per_s": round(self.seen / self.elapsed_s, 2) if self.elapsed_s else 0.0}


class RejectsReport:
    """The rejects CSV, written as rows come so an interrupted run still leaves what it found."""

    def __init__(self, path: Path, summary: EnrollmentSummary) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._writer = csv.writer(self._file)
        self._writer.writerow(REJECT_COLUMNS)
        self._summary = summary

    def add(self, line: int | str, number: str, photo: str, code: str, message: str) -> None:
        self._writer.writerow([line, number, photo, code, message])
        self._file.flush()
        self._summary.rejected += 1
        self._summary.rejects_by_code[code] = self._summary.rejects_by_code.get(code, 0) + 1

    def close(self) -> None:
        self._file.close()


def run_enrollment(engine: Engine, jobs: list[PhotoJob], options: EnrollmentOptions,
                   engine_settings: EngineSettings, source_rejects: list[SourceReject] | None = None,
                   ) -> EnrollmentSummary:
    """Enrolls every job not yet enrolled; returns the counts. Flags duplicates; writes the rejects CSV."""
    summary = EnrollmentSummary()
    started = time.perf_counter()
    report = RejectsReport(options.rejects_path, summary)
    try:
        for r in source_rejects or []:
            report.add(r.line, r.insurance_number, r.photo, r.code, r.message)
        with Session(engine, expire_on_commit=False) as db:
            index, how = load_or_rebuild(db, options.index_path, options.index_params,
                                         engine=engine_settings.engine_tag)
            log.info("face index %s: %d embeddings", how, len(index))
            done = enrolled_photo_hashes(db, sorted({j.insurance_number for j in jobs}))
            todo = list(_pending(jobs, done, summary, report))
            with _progress(options.show_progress, len(todo)) as progress:
                task = progress.add_task("enrolling", total=len(todo))
                replaced: set[str] = set()
                for job, analysis in _analysed(todo, options.workers, engine_settings):
                    summary.seen += 1
                    _commit(db, index, job, analysis, options, engine_settings, summary, report, replaced)
                    progress.advance(task)
            index.save(options.index_path)
    finally:
        report.close()
        summary.elapsed_s = time.perf_counter() - started
    return summary


def _pending(jobs: list[PhotoJob], done: set[tuple[str, str]], summary: EnrollmentSummary,
             report: RejectsReport) -> Iterator[tuple[PhotoJob, str]]:
    """Jobs whose photo is not yet enrolled for the person, with the photo's sha256 (hashing is cheap)."""
    for job in jobs:
        try:
            digest = sha256_of(job.path.read_bytes())
        except OSError as e:
            report.add(job.line or "", job.insurance_number, str(job.path), ReasonCode.NOT_FOUND.value,
                       f"photo cannot be read ({e.__class__.__name__})")
            continue
        if (job.insurance_number, digest) in done:
            summary.skipped += 1
        else:
            done.add((job.insurance_number, digest))  # a photo listed twice for one person is done once
            yield job, digest


def _analysed(todo: list[tuple[PhotoJob, str]], workers: int, settings: EngineSettings,
              ) -> Iterator[tuple[PhotoJob, PhotoAnalysis]]:
    """Analyses photos on `workers` processes, a bounded number in flight; yields as they finish."""
    for (job, _digest), analysis in run_bounded(todo, lambda entry: (analyse_file, (str(entry[0].path),)),
                                                workers=workers, initializer=init_worker,
                                                initargs=(settings.model_dump_json(),)):
        yield job, analysis


def _commit(db: Session, index, job: PhotoJob, analysis: PhotoAnalysis,  # type: ignore[no-untyped-def]
            options: EnrollmentOptions, settings: EngineSettings, summary: EnrollmentSummary,
            report: RejectsReport, replaced: set[str]) -> None:
    """Enrolls one analysed photo (its own transaction) or reports it; `replace` acts once per person."""
    if not analysis.accepted:
        report.add(job.line or "", job.insurance_number, str(job.path), analysis.code, analysis.message)
        return
    try:
        result = enroll_photo(
            db, index=index, insurance_number=job.insurance_number, name=job.name, photo=analysis,
            source=f"bulk:{job.path.name}", actor=options.actor, duplicate_threshold=settings.duplicate_threshold,
            replace=options.replace and job.insurance_number not in replaced, replace_reason=options.replace_reason,
            photo_bytes=job.path.read_bytes() if options.photo_dir else None, photo_dir=options.photo_dir)
    except NameRefused as e:  # a bidi override or control character in the roster's name (models/names.py)
        db.rollback()
        report.add(job.line or "", job.insurance_number, str(job.path), e.code.value,
                   f"{e.message}: {', '.join(e.details.get('code_points', []))}")
        return
    if result.already_enrolled:
        summary.skipped += 1
        return
    replaced.add(job.insurance_number)
    summary.enrolled += 1
    summary.persons_created += result.person_created
    summary.duplicate_flags += len(result.flag_ids)


def _progress(show: bool, total: int) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not show or total == 0)
