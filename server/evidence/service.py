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
  insured person (faiss index) and the staff gallery; a person is named only under the identification
  threshold for the gallery's size and clearly ahead of the runner-up (models/faces/match.py `identify`),
  otherwise the flag says "unknown person";
- liveness: the uploaded key frames must show the task's challenge done by a 3-D head (`liveness.py`);
- the place (实地, `place.py`): the scene key frame against the bed's reference frames;
- evidence used once (`replay.py`, `fingerprints.py`): every image's sha256 and perceptual hash, compared with
  the earlier captures of the same bed, person and device (any capture for a byte copy); kept after the images
  are dropped, so a frame, crop, scene or sequence sent again is `replayed_evidence`.

Every comparison stays within one engine: the server's encoding of a result's crop is compared with enrolled
faces, staff faces and recent captures of the engine that made it, with that engine's tolerances
(models/faces/engines.py); the device's own embedding only with the server's encoding of the same engine.

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
from sqlalchemy import func, update
from sqlmodel import Session, col, select

from models.errors import ImageError, UnknownEngine
from models.faces.decode import decode_image
from models.faces.engine import FaceEngine
from models.faces.engines import SYNTHETIC, EngineName, EngineProfile, identification_threshold
from models.faces.match import Embeddings, distances, identify
from models.settings import EngineSettings
from models.verdicts import FlagKind, Verdict
from server.admissions.tables import Admission
from server.audit import service as audit
from server.campaigns.tables import CheckTask
from server.checks import policy
from server.checks.tables import CheckResult, KeyFrame
from server.db import utcnow
from server.evidence import queue as evidence_queue
from server.evidence import replay
from server.evidence.fingerprints import Fingerprint
from server.evidence.liveness import LivenessRecheck
from server.evidence.place import PlaceChecker, PlaceOutcome, drop_scene
from server.evidence.recent import Capture, RecentCaptures
from server.flags import service as flag_service
from server.flags.tables import Flag, FlagStatus
from server.persons.duplicates import candidate_persons
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
    liveness: LivenessRecheck = field(init=False)
    place: PlaceChecker = field(init=False)
    _recent: dict[str, RecentCaptures] = field(default_factory=dict, init=False)  # by engine tag
    _face_engines: dict[EngineName, FaceEngine] = field(default_factory=dict, init=False)
    _indexes: dict[str, Any] = field(default_factory=dict, init=False)  # by engine tag
    worker: str = field(default_factory=evidence_queue.worker_name)  # as its claims name it
    in_hand: list[int] = field(default_factory=list, init=False)  # claimed, not yet written

    def __post_init__(self) -> None:
        self.liveness = LivenessRecheck(self.engine_settings, self.settings.simulated_liveness_allowed)
        self.place = PlaceChecker(self.settings, self.engine_settings)

    def recent(self, db: Session, engine: str, now: Any) -> RecentCaptures:
        """The recent captures of one engine (loaded from the database on first use)."""
        found = self._recent.get(engine)
        if found is None:
            found = self._recent[engine] = RecentCaptures(timedelta(hours=self.settings.cross_hospital_window_h),
                                                          engine=engine)
            found.load(db, now)
        return found

    def run_once(self, db: Session, gate: AbstractContextManager[Any] | None = None, *,
                 batch: int | None = None) -> int:
        """Claims up to `batch` (`evidence_batch`) unchecked results from the queue (`queue.py`), checks them,
        commits; returns how many were checked. Any number of these run at once, in any processes.

        The costly part (re-encoding crops, landmarks, place matching) runs before `gate` is taken: only the
        claim and the writes hold it.
        """
        with gate or nullcontext():
            ids = evidence_queue.claim(db, worker=self.worker, limit=batch or self.settings.evidence_batch,
                                       lease_s=self.settings.evidence_lease_s)
        if not ids:
            return 0
        self.in_hand = ids
        now = utcnow()
        for recent in self._recent.values():
            recent.forget_before(now)
            recent.refresh(db, now)
        rows = db.exec(select(CheckResult, CheckTask).join(CheckTask, col(CheckTask.id) == col(CheckResult.task_id))
                       .where(col(CheckResult.id).in_(ids)).order_by(col(CheckResult.id))).all()
        person_ids = sorted({task.insured_person_id for _, task in rows})
        enrolled = {tag: enrolled_vectors(db, person_ids, engine=tag)
                    for tag in {r.server_engine_version for r, _ in rows if r.server_engine_version}}
        checked = [(result, task, *self._check(db, result, task, enrolled.get(result.server_engine_version, {}).get(
                    task.insured_person_id), now), self.place.check(db, result, task)) for result, task in rows]
        mark = replay.watermark(db)
        used = self._replays(db, [(r, t, f) for r, t, f, _, _ in checked], now)
        db.commit()  # ends the read transaction before the write one
        with gate or nullcontext():
            entries: list[audit.Entry] = []
            # Another worker may have written earlier captures' fingerprints since this one read them.
            written = replay.written_after(db, mark)
            for (result, task, findings, named, place), (capture, prints, reused) in zip(checked, used, strict=True):
                if prints and not reused and written:
                    late = replay.check_late(capture, prints, written, skip_crop_copy=_copied_crop(findings))
                    reused = [Finding(FlagKind.REPLAYED_EVIDENCE, late)] if late else []
                findings = findings + _place_findings(result, place) + reused
                db.add_all(replay.fingerprint_rows(capture, prints))
                overruled = _overrule(task, findings)
                if overruled is not None:
                    entries.append(audit.Entry("system", "evidence.verdict_overruled", "check_task", task.id or 0,
                                               {"from": Verdict.VERIFIED.value, "to": overruled.verdict.value,
                                                "reason": overruled.reason, "result_id": result.id}))
                    findings.append(overruled)
                    db.add(task)
                for finding in findings:
                    flag = flag_service.raise_flag(db, kind=finding.kind, hospital_id=task.hospital_id,
                                                   details=finding.details, task=task)
                    entries.append(audit.Entry("system", "evidence.flagged", "flag", flag.id or 0,
                                               {"kind": finding.kind.value, "task_id": task.id,
                                                "result_id": result.id}))
                if named:
                    _name_in_flag(db, task, named)
                result.evidence_checked_at = now
                result.evidence_claimed_by, result.evidence_claimed_until = None, None
                if task.verdict == Verdict.VERIFIED and not findings and not self.settings.keep_verified_crops:
                    result.face_crop_jpeg = None
                    db.execute(update(KeyFrame).where(col(KeyFrame.result_id) == result.id).values(jpeg=None))
                    drop_scene(place)
                if place is not None:
                    db.add(place.apply())
                db.add(result)
            audit.record_many(db, entries)
            db.commit()
        self.in_hand = []
        return len(rows)

    def run_until_done(self, db: Session, gate: AbstractContextManager[Any] | None = None) -> int:
        total = 0
        while checked := self.run_once(db, gate):
            total += checked
        return total

    def _replays(self, db: Session, rows: list[tuple[CheckResult, CheckTask, list[Finding]]], now: Any
                 ) -> list[tuple[replay.Capture, list[Fingerprint], list[Finding]]]:
        """Each result's fingerprints and whether any repeats an earlier capture's (this run's included)."""
        since = now - timedelta(days=self.settings.replay_window_days)
        batch: list[tuple[replay.Capture, Fingerprint]] = []
        out = []
        for result, task, findings in rows:
            capture = replay.Capture.of(result, task)
            prints = replay.fingerprints_of(db, result)
            details = replay.check_replay(db, capture, prints, since, batch, skip_crop_copy=_copied_crop(findings))
            out.append((capture, prints, [Finding(FlagKind.REPLAYED_EVIDENCE, details)] if details else []))
            batch += [(capture, p) for p in prints]
        return out

    # --- one result ---------------------------------------------------------------------------------
    def _check(self, db: Session, result: CheckResult, task: CheckTask, enrolled: Embeddings | None,
               now: Any) -> tuple[list[Finding], dict[str, Any] | None]:
        """What is wrong with this result's evidence, and whose face it shows when not the billed person's."""
        engine: EngineProfile | None = None
        vector: np.ndarray | None = None
        if result.server_embedding is not None and result.server_engine_version:
            try:
                engine = self.engine_settings.profile_for_tag(result.server_engine_version)
            except UnknownEngine:
                log.warning("result %s: unknown engine, evidence not checked", result.id)
                return [], None
            vector = bytes_to_vector(result.server_embedding)
        real = engine is not None and engine.name != EngineName.SYNTHETIC
        liveness = self.liveness.findings(
            db, result, task, encoder=self._region_encoder(engine) if real and engine else None,
            crop_vector=vector if real else None, same_person=engine.match if real and engine else None)
        first = [f for f in (self._tampering(result), self._same_image(db, result)) if f]
        first += [Finding(kind, details) for kind, details in liveness]
        # The face the server saw in the crop is the one to compare and name; the device's is only its word.
        if engine is None or vector is None:
            return first, None
        recent = self.recent(db, engine.tag, now)
        findings = list(first)
        findings += self._against_recent(result, task, vector, findings, engine, recent)
        if enrolled is not None and len(enrolled):
            # The nearest single photo, not the person's mean: this asks "is it that very picture", not "who".
            distance = float(np.min(distances(enrolled, Embeddings.of(engine.tag, vector))))
            if distance <= engine.replay_max_distance:
                findings.append(Finding(FlagKind.REPLAYED_PHOTO, {"reason": "enrolled_photo_shown",
                                                                  "result_id": result.id,
                                                                  "distance": round(distance, 4)}))
        named = self._whose_face(db, task, vector, engine) if task.verdict in NAMED_VERDICTS else None
        recent.add(Capture(result.id or 0, task.id or 0, task.hospital_id, task.insured_person_id,
                           result.received_at), vector)
        return findings, named

    def _region_encoder(self, engine: EngineProfile) -> Any:
        face_engine = self.face_engine(engine.name)
        return lambda image: face_engine.encode_largest(image, thorough=False)

    def _tampering(self, result: CheckResult) -> Finding | None:
        """The device's embedding against the server's encoding of the crop it came with (same engine only)."""
        if result.embedding is None:
            return None
        base = {"result_id": result.id, "device_id": result.device_id, "evidence_sha256": result.evidence_sha256}
        if result.server_embedding is not None:
            recomputed: np.ndarray | None = bytes_to_vector(result.server_embedding)
            tag = result.server_engine_version
        elif result.face_crop_jpeg is None:
            return None
        else:
            recomputed, tag = self._reencode(result, base), self.engine_settings.engine_tag
            if isinstance(recomputed, Finding):
                return recomputed
        if recomputed is None:
            return Finding(FlagKind.TAMPERED_EVIDENCE, {**base, "reason": "no_face_in_crop"})
        # A synthetic crop (demo, tests) carries an embedding in the device's own space; otherwise two
        # engines' embeddings cannot be measured against each other.
        if tag != result.engine_version and tag != SYNTHETIC.tag:
            return None
        engine = self.engine_settings.profile_for_tag(tag)
        distance = float(np.linalg.norm(recomputed - bytes_to_vector(result.embedding)))
        if distance > engine.tamper_tolerance:
            return Finding(FlagKind.TAMPERED_EVIDENCE, {**base, "reason": "embedding_differs_from_crop",
                                                        "distance": round(distance, 4),
                                                        "tolerance": engine.tamper_tolerance})
        return None

    def _reencode(self, result: CheckResult, base: dict[str, Any]) -> np.ndarray | Finding | None:
        assert result.face_crop_jpeg is not None
        try:
            return self.face_engine(self.engine_settings.engine).encode_largest(
                decode_image(result.face_crop_jpeg, self.engine_settings), thorough=False)
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

    def _against_recent(self, result: CheckResult, task: CheckTask, vector: np.ndarray, so_far: list[Finding],
                        engine: EngineProfile, recent: RecentCaptures) -> list[Finding]:
        findings: list[Finding] = []
        replayed = any(f.kind == FlagKind.REPLAYED_PHOTO for f in so_far)
        other_hospitals: set[int] = set()
        # The same face in two hospitals is a 1:N search over the window's captures: the threshold shrinks
        # with how many there are, as naming's does, so strangers are not joined by chance.
        same_face = identification_threshold(engine, len(recent.captures),
                                             stranger_named_rate=self.engine_settings.naming_stranger_rate)
        # Only captures uploaded before this one: the same findings whichever worker judges which result first.
        for capture, distance in recent.nearest(vector, before_result_id=result.id or 0):
            if capture.task_id == task.id:
                continue
            if not replayed and distance <= engine.replay_max_distance:
                replayed = True
                findings.append(Finding(FlagKind.REPLAYED_PHOTO, {
                    "reason": "near_identical_capture", "result_id": result.id, "distance": round(distance, 4),
                    "earlier_result_id": capture.result_id, "earlier_task_id": capture.task_id}))
            if (capture.hospital_id != task.hospital_id and capture.hospital_id not in other_hospitals
                    and distance <= same_face):
                other_hospitals.add(capture.hospital_id)
                findings.append(Finding(FlagKind.CROSS_HOSPITAL_FACE, {
                    "result_id": result.id, "other_hospital_id": capture.hospital_id,
                    "other_result_id": capture.result_id, "other_task_id": capture.task_id,
                    "distance": round(distance, 4), "threshold": round(same_face, 4),
                    "window_h": self.settings.cross_hospital_window_h}))
        return findings

    def _whose_face(self, db: Session, task: CheckTask, vector: np.ndarray,
                    engine: EngineProfile) -> dict[str, Any]:
        """Whose face this is among enrolled insured persons (1:N, faiss) and staff, or nobody's.

        Open-set: the gallery is every enrolled person and staff member of the engine, and a name is given only
        under the identification threshold for that many people and `naming_margin` ahead of the runner-up.
        """
        index = self._catch_up_index(db, engine)
        staff = _staff_gallery(db, engine.tag)
        gallery_size = _enrolled_persons(db, engine.tag) + len(staff)
        threshold = identification_threshold(engine, gallery_size,
                                             stranger_named_rate=self.engine_settings.naming_stranger_rate)
        # Candidates within the 1:1 threshold, so the runner-up that decides the margin is among them too.
        candidates = candidate_persons(db, index=index, vector=vector, person_id=task.insured_person_id,
                                       threshold=engine.match)
        gallery: dict[tuple[str, int], Embeddings] = {("insured_person", c.insured_person_id): c.embeddings
                                                      for c in candidates}
        gallery.update({("staff", staff_id): member.embeddings for staff_id, member in staff.items()})
        outcome = identify(gallery, Embeddings.of(engine.tag, vector), threshold=threshold,
                           margin=engine.naming_margin)
        naming: dict[str, Any] = {"outcome": outcome.reason, "threshold": round(threshold, 4),
                                  "gallery_size": gallery_size, "named": []}
        if outcome.named is None:
            return naming
        kind, key = outcome.named
        if kind == "insured_person":
            number = next(c.insurance_number for c in candidates if c.insured_person_id == key)
            admitted = db.exec(select(Admission.hospital_id).where(
                Admission.insured_person_id == key, col(Admission.discharged_at).is_(None))).first()
            named = {"kind": kind, "insured_person_id": key, "insurance_number": number,
                     "distance": round(outcome.distance, 4), "admitted_at_hospital_id": admitted}
        else:
            member = staff[key]
            named = {"kind": kind, "staff_member_id": key, "staff_number": member.staff_number,
                     "hospital_id": member.hospital_id, "distance": round(outcome.distance, 4)}
        return {**naming, "named": [named]}

    def face_engine(self, name: EngineName) -> FaceEngine:
        if name not in self._face_engines:
            self._face_engines[name] = FaceEngine(self.engine_settings.model_copy(update={"engine": name}))
        return self._face_engines[name]

    def _catch_up_index(self, db: Session, engine: EngineProfile) -> Any:
        index = self._indexes.get(engine.tag)
        if index is None:
            index, outcome = load_or_rebuild(db, self.settings.face_index_path_for(engine.name), engine=engine.tag)
            self._indexes[engine.tag] = index
            log.info("face index for naming (%s): %s", engine.name, outcome)
        else:
            catch_up(db, index)
        return index


@dataclass
class _Overruled(Finding):
    verdict: Verdict = Verdict.SPOOF
    reason: str = ""


def _overrule(task: CheckTask, findings: list[Finding]) -> Finding | None:
    """A verified check whose liveness or identity the server's re-judgement refused is not verified: a session
    that fails the challenge (or a method the task does not allow) is a spoof; a face that changed during the
    session goes to review (unrecognised). The verdict's own flag is raised beside the finding's."""
    if task.verdict != Verdict.VERIFIED:
        return None
    kinds = {f.kind for f in findings}
    if FlagKind.LIVENESS_MISMATCH in kinds:
        verdict, reason = Verdict.SPOOF, "liveness_rejudged"
    elif FlagKind.IDENTITY_CHANGED in kinds:
        verdict, reason = Verdict.UNRECOGNISED, "identity_changed"
    else:
        return None
    task.verdict, task.verdict_at = verdict, utcnow()
    kind = policy.flag_kind(verdict)
    assert kind is not None
    return _Overruled(kind, {"reason": reason, "overruled": Verdict.VERIFIED.value}, verdict, reason)


def _copied_crop(findings: list[Finding]) -> bool:
    """The crop's byte copy is already a replayed_photo (same_image): not flagged again as replayed_evidence."""
    return any(f.kind == FlagKind.REPLAYED_PHOTO and f.details.get("reason") == "same_image" for f in findings)


def _place_findings(result: CheckResult, place: PlaceOutcome | None) -> list[Finding]:
    if place is None or not place.mismatch:
        return []
    return [Finding(FlagKind.PLACE_MISMATCH, place.flag_details(result))]


def _name_in_flag(db: Session, task: CheckTask, naming: dict[str, Any]) -> None:
    kind = policy.flag_kind(task.verdict)
    flag = db.exec(select(Flag).where(Flag.task_id == task.id, Flag.kind == kind)).first()
    if flag is not None:
        flag.details = {**flag.details, "named": naming["named"],
                        "naming": {k: v for k, v in naming.items() if k != "named"}}
        flag.updated_at = utcnow()
        someone_else = any(n.get("kind") == "staff" or n.get("insured_person_id") != task.insured_person_id
                           for n in naming["named"])
        verdict = policy.after_naming(task.verdict, named_someone_else=someone_else)
        if verdict != task.verdict and flag.status == FlagStatus.OPEN:
            # Named as someone else: impersonation, ranked with the fraud kinds (server/checks/policy.py).
            audit.record(db, actor="system", action="verdict.named", object_type="check_task", object_id=task.id or 0,
                         data={"from": task.verdict.value, "to": verdict.value, "flag_id": flag.id})
            task.verdict, flag.kind = verdict, policy.flag_kind(verdict) or flag.kind
            flag.details = {**flag.details, "reason": "named_someone_else", "reason_before": flag.details.get("reason")}
            db.add(task)
        db.add(flag)


@dataclass(frozen=True)
class _StaffFaces:
    hospital_id: int
    staff_number: str
    embeddings: Embeddings


def _staff_gallery(db: Session, engine: str) -> dict[int, _StaffFaces]:
    """The staff gallery of one engine, by staff member (hundreds per county: scanned exactly, no index)."""
    rows = db.exec(select(FaceEmbedding.vector, StaffMember.id, StaffMember.hospital_id, StaffMember.staff_number)
                   .join(StaffMember, col(StaffMember.id) == col(FaceEmbedding.staff_member_id))
                   .where(FaceEmbedding.is_active == True, FaceEmbedding.engine_version == engine)).all()  # noqa: E712
    vectors: dict[int, list[np.ndarray]] = {}
    about: dict[int, tuple[int, str]] = {}
    for stored, staff_id, hospital_id, number in rows:
        vectors.setdefault(int(staff_id), []).append(bytes_to_vector(stored))
        about[int(staff_id)] = (int(hospital_id), number)
    return {sid: _StaffFaces(*about[sid], Embeddings(engine, np.stack(v))) for sid, v in vectors.items()}


def _enrolled_persons(db: Session, engine: str) -> int:
    """How many insured persons have an active face of `engine`: the size of the naming gallery."""
    return int(db.exec(select(func.count(func.distinct(FaceEmbedding.insured_person_id))).where(
        col(FaceEmbedding.insured_person_id).is_not(None), FaceEmbedding.is_active == True,  # noqa: E712
        FaceEmbedding.engine_version == engine)).one() or 0)
