"""The evidence check: a second look at each result with a face, after the verdict is out.

The verdict is decided at upload, in milliseconds, so a county's aggregate is ready within the minute. The
checks here cost more (re-encoding a JPEG crop is ~0.1 s of CPU), so a background job runs them a few
seconds later, in result order:

- tampering: the server's own encoding of the uploaded crop (made at upload, server/checks/evidence.py,
  and what the verdict was decided on) far from the embedding the device reported means the device (or
  someone between it and us) changed one of them; results stored before the server encoded crops at
  upload are re-encoded here;
- replayed photo: the same image bytes as another check, or an embedding near-identical to another check's
  or to an enrolled photo of this person (a picture shown to the camera instead of the patient);
- the same face in two hospitals within a window;
- naming the impersonator: a face that is not the billed person is searched 1:N against every enrolled
  insured person (faiss index) and the staff gallery, and the match is written into the flag;
- liveness: the uploaded key frames must show the task's challenge done by a 3-D head (`liveness.py`);
- the place (实地, `place.py`): the scene key frame against the bed's reference frames.

Findings are flags with ids and distances only; never face data. A verified check's crop is dropped here
once nothing was found (unless `keep_verified_crops`), with its scene frame and key frames: they were only
kept to be looked at.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import update
from sqlmodel import Session, col, select

from models.errors import ImageError
from models.faces.decode import decode_image
from models.faces.engine import FaceEngine
from models.settings import EngineSettings
from models.verdicts import FlagKind, Verdict
from server.admissions.tables import Admission
from server.audit import service as audit
from server.campaigns.tables import CheckTask
from server.checks import policy
from server.checks.tables import CheckResult, KeyFrame
from server.db import utcnow
from server.evidence.liveness import LivenessRecheck
from server.evidence.place import PlaceChecker, PlaceOutcome, drop_scene
from server.evidence.recent import Capture, RecentCaptures
from server.flags import service as flag_service
from server.flags.tables import Flag
from server.persons.duplicates import find_duplicates
from server.persons.face_index import catch_up, load_or_rebuild
from server.persons.service import bytes_to_vector, enrolled_vectors
from server.persons.tables import FaceEmbedding, StaffMember
from server.settings import ServerSettings

log = logging.getLogger("bedcheck.evidence")

NAMED_VERDICTS = (Verdict.IMPERSONATED, Verdict.UNRECOGNISED)


@dataclass
class Finding:
    kind: FlagKind
    details: dict[str, Any]


@dataclass
class EvidenceChecker:
    """Holds what is worth keeping between runs: recent captures, the face engine and the 1:N index."""

    settings: ServerSettings
    engine_settings: EngineSettings
    recent: RecentCaptures = field(init=False)
    liveness: LivenessRecheck = field(init=False)
    place: PlaceChecker = field(init=False)
    _face_engine: FaceEngine | None = field(default=None, init=False)
    _index: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.recent = RecentCaptures(timedelta(hours=self.settings.cross_hospital_window_h))
        self.liveness = LivenessRecheck(self.engine_settings, self.settings.simulated_liveness_allowed)
        self.place = PlaceChecker(self.settings, self.engine_settings)

    def run_once(self, db: Session, gate: AbstractContextManager[Any] | None = None) -> int:
        """Checks up to `evidence_batch` unchecked results; commits; returns how many were checked.

        The costly part (re-encoding crops) runs before `gate` is taken: only the writes hold it.
        """
        now = utcnow()
        if not self.recent.loaded:
            self.recent.load(db, now)
        self.recent.forget_before(now)
        rows = db.exec(select(CheckResult, CheckTask).join(CheckTask, col(CheckTask.id) == col(CheckResult.task_id))
                       .where(col(CheckResult.evidence_checked_at).is_(None))
                       .order_by(col(CheckResult.id)).limit(self.settings.evidence_batch)).all()
        if not rows:
            return 0
        enrolled = enrolled_vectors(db, sorted({task.insured_person_id for _, task in rows}))
        checked = [(result, task, *self._check(db, result, task, enrolled.get(task.insured_person_id)),
                    self.place.check(db, result, task)) for result, task in rows]
        db.commit()  # ends the read transaction before the write one
        with gate or nullcontext():
            entries: list[audit.Entry] = []
            for result, task, findings, named, place in checked:
                findings = findings + _place_findings(result, place)
                for finding in findings:
                    flag = flag_service.raise_flag(db, kind=finding.kind, hospital_id=task.hospital_id,
                                                   details=finding.details, task=task)
                    entries.append(audit.Entry("system", "evidence.flagged", "flag", flag.id or 0,
                                               {"kind": finding.kind.value, "task_id": task.id,
                                                "result_id": result.id}))
                if named:
                    _name_in_flag(db, task, named)
                result.evidence_checked_at = now
                if task.verdict == Verdict.VERIFIED and not findings and not self.settings.keep_verified_crops:
                    result.face_crop_jpeg = None
                    db.execute(update(KeyFrame).where(col(KeyFrame.result_id) == result.id).values(jpeg=None))
                    drop_scene(place)
                if place is not None:
                    db.add(place.apply())
                db.add(result)
            audit.record_many(db, entries)
            db.commit()
        return len(rows)

    def run_until_done(self, db: Session, gate: AbstractContextManager[Any] | None = None) -> int:
        total = 0
        while checked := self.run_once(db, gate):
            total += checked
        return total

    # --- one result ---------------------------------------------------------------------------------
    def _check(self, db: Session, result: CheckResult, task: CheckTask,
               enrolled: np.ndarray | None) -> tuple[list[Finding], list[dict[str, Any]]]:
        """What is wrong with this result's evidence, and whose face it shows when not the billed person's."""
        reported = bytes_to_vector(result.embedding) if result.embedding is not None else None
        # The face the server saw in the crop is the one to compare and name; the device's is only its word.
        vector = bytes_to_vector(result.server_embedding) if result.server_embedding is not None else reported
        if vector is None:
            return [], []
        tampering = self._tampering(result, reported) if reported is not None else None
        findings = [f for f in (tampering, self._same_image(db, result)) if f]
        mismatch = self.liveness.findings(db, result, task)
        if mismatch is not None:
            findings.append(Finding(FlagKind.LIVENESS_MISMATCH, mismatch))
        findings += self._against_recent(result, task, vector, findings)
        if enrolled is not None and len(enrolled):
            distance = float(np.min(np.linalg.norm(enrolled - vector, axis=1)))
            if distance <= self.settings.replay_max_distance:
                findings.append(Finding(FlagKind.REPLAYED_PHOTO, {"reason": "enrolled_photo_shown",
                                                                  "result_id": result.id,
                                                                  "distance": round(distance, 4)}))
        named = self._whose_face(db, task, vector) if task.verdict in NAMED_VERDICTS else []
        self.recent.add(Capture(result.id or 0, task.id or 0, task.hospital_id, task.insured_person_id,
                                result.received_at), vector)
        return findings, named

    def _tampering(self, result: CheckResult, vector: np.ndarray) -> Finding | None:
        base = {"result_id": result.id, "device_id": result.device_id, "evidence_sha256": result.evidence_sha256}
        if result.server_embedding is not None:
            recomputed: np.ndarray | None = bytes_to_vector(result.server_embedding)
        elif result.face_crop_jpeg is None:
            return None
        else:
            recomputed = self._reencode(result, base)
            if isinstance(recomputed, Finding):
                return recomputed
        if recomputed is None:
            return Finding(FlagKind.TAMPERED_EVIDENCE, {**base, "reason": "no_face_in_crop"})
        distance = float(np.linalg.norm(recomputed - vector))
        if distance > self.settings.tamper_tolerance:
            return Finding(FlagKind.TAMPERED_EVIDENCE, {**base, "reason": "embedding_differs_from_crop",
                                                        "distance": round(distance, 4),
                                                        "tolerance": self.settings.tamper_tolerance})
        return None

    def _reencode(self, result: CheckResult, base: dict[str, Any]) -> np.ndarray | Finding | None:
        assert result.face_crop_jpeg is not None
        try:
            return self.face_engine.encode_largest(decode_image(result.face_crop_jpeg, self.engine_settings),
                                                   thorough=False)
        except ImageError as e:
            return Finding(FlagKind.TAMPERED_EVIDENCE, {**base, "reason": "crop_unreadable", "code": e.code.value})

    def _same_image(self, db: Session, result: CheckResult) -> Finding | None:
        if not result.evidence_sha256:
            return None
        earlier = db.exec(select(CheckResult.id, CheckResult.task_id)
                          .where(CheckResult.evidence_sha256 == result.evidence_sha256,
                                 CheckResult.task_id != result.task_id, col(CheckResult.id) < (result.id or 0))
                          .order_by(col(CheckResult.id)).limit(1)).first()
        if earlier is None:
            return None
        return Finding(FlagKind.REPLAYED_PHOTO, {"reason": "same_image", "result_id": result.id,
                                                 "earlier_result_id": earlier[0], "earlier_task_id": earlier[1]})

    def _against_recent(self, result: CheckResult, task: CheckTask, vector: np.ndarray,
                        so_far: list[Finding]) -> list[Finding]:
        findings: list[Finding] = []
        replayed = any(f.kind == FlagKind.REPLAYED_PHOTO for f in so_far)
        other_hospitals: set[int] = set()
        for capture, distance in self.recent.nearest(vector):
            if capture.task_id == task.id:
                continue
            if not replayed and distance <= self.settings.replay_max_distance:
                replayed = True
                findings.append(Finding(FlagKind.REPLAYED_PHOTO, {
                    "reason": "near_identical_capture", "result_id": result.id, "distance": round(distance, 4),
                    "earlier_result_id": capture.result_id, "earlier_task_id": capture.task_id}))
            if (capture.hospital_id != task.hospital_id and capture.hospital_id not in other_hospitals
                    and distance <= (result.threshold or self.engine_settings.match_threshold)):
                other_hospitals.add(capture.hospital_id)
                findings.append(Finding(FlagKind.CROSS_HOSPITAL_FACE, {
                    "result_id": result.id, "other_hospital_id": capture.hospital_id,
                    "other_result_id": capture.result_id, "other_task_id": capture.task_id,
                    "distance": round(distance, 4), "window_h": self.settings.cross_hospital_window_h}))
        return findings

    def _whose_face(self, db: Session, task: CheckTask, vector: np.ndarray) -> list[dict[str, Any]]:
        """Enrolled insured persons (1:N, faiss) and staff whose face this is, nearest first."""
        threshold = self.engine_settings.match_threshold
        named: list[dict[str, Any]] = []
        for match in find_duplicates(db, index=self._catch_up_index(db), vector=vector,
                                     person_id=task.insured_person_id, threshold=threshold):
            admitted = db.exec(select(Admission.hospital_id).where(
                Admission.insured_person_id == match.insured_person_id,
                col(Admission.discharged_at).is_(None))).first()
            named.append({"kind": "insured_person", "insured_person_id": match.insured_person_id,
                          "insurance_number": match.insurance_number, "distance": match.distance,
                          "admitted_at_hospital_id": admitted})
        named += _staff_matches(db, vector, threshold)
        return sorted(named, key=lambda n: n["distance"])

    @property
    def face_engine(self) -> FaceEngine:
        if self._face_engine is None:
            self._face_engine = FaceEngine(self.engine_settings)
        return self._face_engine

    def _catch_up_index(self, db: Session) -> Any:
        if self._index is None:
            self._index, outcome = load_or_rebuild(db, self.settings.resolved_face_index_path)
            log.info("face index for naming: %s", outcome)
        else:
            catch_up(db, self._index)
        return self._index


def _place_findings(result: CheckResult, place: PlaceOutcome | None) -> list[Finding]:
    if place is None or not place.mismatch:
        return []
    return [Finding(FlagKind.PLACE_MISMATCH, place.flag_details(result))]


def _name_in_flag(db: Session, task: CheckTask, named: list[dict[str, Any]]) -> None:
    kind = policy.flag_kind(task.verdict)
    flag = db.exec(select(Flag).where(Flag.task_id == task.id, Flag.kind == kind)).first()
    if flag is not None:
        flag.details = {**flag.details, "named": named}
        flag.updated_at = utcnow()
        db.add(flag)


def _staff_matches(db: Session, vector: np.ndarray, threshold: float) -> list[dict[str, Any]]:
    """The staff gallery is small (hundreds per county): an exact scan is faster than keeping an index."""
    rows = db.exec(select(FaceEmbedding.vector, StaffMember.id, StaffMember.hospital_id, StaffMember.staff_number)
                   .join(StaffMember, col(StaffMember.id) == col(FaceEmbedding.staff_member_id))
                   .where(FaceEmbedding.is_active == True)).all()  # noqa: E712
    best: dict[int, dict[str, Any]] = {}
    for stored, staff_id, hospital_id, number in rows:
        distance = round(float(np.linalg.norm(bytes_to_vector(stored) - vector)), 4)
        if distance <= threshold and (staff_id not in best or distance < best[staff_id]["distance"]):
            best[staff_id] = {"kind": "staff", "staff_member_id": staff_id, "staff_number": number,
                              "hospital_id": hospital_id, "distance": distance}
    return list(best.values())
