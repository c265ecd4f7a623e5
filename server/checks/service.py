"""Device results -> verdicts and flags; the deadline sweep."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.errors import (
    BedcheckError,
    ClockImplausible,
    InvalidInput,
    NonceMismatch,
    NonceReplayed,
    NotFound,
    TaskNotForDevice,
)
from models.settings import EngineSettings
from models.wire import ResultUpload
from models.wire.base import MAX_CLOCK_OFFSET_MS
from server.admissions import leave as leave_service
from server.admissions.tables import Admission
from server.audit import service as audit
from server.campaigns import service as campaign_service
from server.campaigns.tables import Campaign, CampaignKind, CampaignStatus, CheckTask
from server.checks.evidence import CropEncoder, Evidence, frame_distances
from server.checks.policy import allowed_methods, decide
from server.checks.tables import CheckResult, KeyFrame
from server.db import claim_write, utcnow
from server.devices.tables import Device
from server.flags import service as flag_service
from server.hospitals.tables import Bed
from server.persons.service import enrolled_vectors, vector_to_bytes
from server.places import service as place_service
from server.places.tables import SceneEvidence

# A device clock off by more than ~24 days is broken, not drifting; it is also the stored column's range (int32).


@dataclass(frozen=True)
class Accepted:
    task: CheckTask
    result: CheckResult
    duplicate: bool
    key_frames: list[KeyFrame] = field(default_factory=list)


def submit_result(db: Session, *, device: Device, upload: ResultUpload, engine_settings: EngineSettings,
                  encoder: CropEncoder, evidence: Evidence | BedcheckError | None = None,
                  clock_tolerance_s: float = 300.0) -> Accepted:
    """Accepts one result exactly once (idempotent on its key); raises the typed error of a refusal."""
    (outcome,) = submit_results(db, device=device, uploads=[upload], engine_settings=engine_settings,
                                encoder=encoder, evidence=None if evidence is None else [evidence],
                                clock_tolerance_s=clock_tolerance_s)
    if isinstance(outcome, BedcheckError):
        raise outcome
    return outcome


def submit_results(db: Session, *, device: Device, uploads: list[ResultUpload], engine_settings: EngineSettings,
                   encoder: CropEncoder, evidence: list[Evidence | BedcheckError] | None = None,
                   clock_tolerance_s: float = 300.0) -> list[Accepted | BedcheckError]:
    """Accepts results exactly once each (idempotent on their keys), in one transaction.

    A device syncing its outbox sends many results at once; one transaction and one round of lookups for
    all of them is what lets a county's devices report within the minute. Each result still gets its own
    verdict, flag and audit record, and a refused result (replayed nonce, another ward's task, no crop, an
    impossible clock) is refused alone, recorded, without holding back the others.

    `evidence`: each upload's crop checked and encoded by `encoder` (`prepare_evidence`), done by the caller
    before it takes the write gate, since encoding a face is the slow part; computed here when not given.
    The server's encoding is judged with the threshold of the engine that made it (`engine_settings`, the
    site's calibration included), against the person's embeddings of that engine and no other's.
    """
    if evidence is None:
        evidence = prepare_evidence(encoder, uploads)
    try:
        # The app's settings (calibration file included, built once in create_app): never a fresh default.
        outcomes = _submit_batch(db, device, uploads, evidence, engine_settings, clock_tolerance_s)
    except IntegrityError:
        # Another server process stored one of these keys between our lookup and our insert (a retry that
        # raced): redo one by one, so the raced key is answered as a duplicate and the rest still land.
        db.rollback()
        if len(uploads) == 1:
            existing = _existing_results(db, [uploads[0].idempotency_key])
            if uploads[0].idempotency_key not in existing:
                raise
            return [_replay_of(db, existing[uploads[0].idempotency_key], device)]
        return [outcome for upload, item in zip(uploads, evidence, strict=True)
                for outcome in submit_results(db, device=device, uploads=[upload], engine_settings=engine_settings,
                                              encoder=encoder, evidence=[item], clock_tolerance_s=clock_tolerance_s)]
    db.commit()
    return outcomes


def prepare_evidence(encoder: CropEncoder, uploads: list[ResultUpload]) -> list[Evidence | BedcheckError]:
    """Each upload's crop, checked and encoded by the server (the slow part: no write gate needed)."""
    return [encoder.evidence_for(upload) for upload in uploads]


def _submit_batch(db: Session, device: Device, uploads: list[ResultUpload], evidence: list[Evidence | BedcheckError],
                  engine_settings: EngineSettings, clock_tolerance_s: float) -> list[Accepted | BedcheckError]:
    # The deadline race: the tasks are read under the write gate (SQLite) or their row locks (PostgreSQL), and
    # the arrival time is taken after, so an upload and the deadline sweep are ordered. A result that gets
    # here first is on time and the sweep's conditional update skips its task; one that gets here after the
    # sweep is late and supersedes the overdue flag. Never on time and flagged overdue.
    claim_write(db)
    existing = _existing_results(db, [u.idempotency_key for u in uploads])
    task_ids = {u.task_id for u in uploads}
    tasks = {t.id: t for t in db.exec(select(CheckTask).where(col(CheckTask.id).in_(task_ids))
                                      .order_by(col(CheckTask.id)).with_for_update()
                                      .execution_options(populate_existing=True))} if task_ids else {}
    person_ids = sorted({t.insured_person_id for t in tasks.values()})
    # Each face is compared with the person's embeddings of the engine that encoded it (the server's, from
    # the crop), and no other's.
    enrolled = {tag: enrolled_vectors(db, person_ids, engine=tag)
                for tag in {e.engine for e in evidence if isinstance(e, Evidence) and e.engine is not None}}
    leaves = leave_service.leaves_of(db, [t.admission_id for t in tasks.values()])
    now = utcnow()
    outcomes: list[Accepted | BedcheckError] = []
    accepted: dict[str, Accepted] = {}
    audit_entries: list[audit.Entry] = []
    flag_details: dict[int, dict[str, Any]] = {}
    scenes: dict[str, bytes] = {}
    for upload, seen in zip(uploads, evidence, strict=True):
        key = upload.idempotency_key
        if key in existing or key in accepted:
            prior = existing[key] if key in existing else accepted[key].result
            outcomes.append(_replay_of(db, prior, device))
            continue
        task = tasks.get(upload.task_id)
        refusal = _refusal(db, device, task, upload) or _clock_refusal(device, task, upload, now, clock_tolerance_s)
        if refusal is None and isinstance(seen, BedcheckError):
            refusal = seen
        if refusal is not None:
            if task is not None:
                audit_entries.append(audit.Entry(
                    actor=f"device:{device.id}", action="result.refused", object_type="check_task",
                    object_id=task.id or 0, data={"code": refusal.code.value}))
            outcomes.append(refusal)
            continue
        assert task is not None and isinstance(seen, Evidence)
        if seen.scene is not None:
            scenes[key] = seen.scene
        probe = seen.probe
        threshold = engine_settings.profile_for_tag(probe.engine).match if probe is not None else None
        clearly_other = threshold * engine_settings.clearly_other_ratio if threshold else None
        # The device's capture time, kept within the task's life: a wrong tablet clock cannot move a check
        # into a leave beyond it.
        checked_at = min(max(upload.captured_at, task.issued_at), now)
        on_leave = leave_service.covering_leave(leaves.get(task.admission_id, []), issued_at=task.issued_at,
                                                at=checked_at) is not None
        person = enrolled.get(probe.engine, {}).get(task.insured_person_id) if probe else None
        decision = decide(upload, person, threshold, probe=probe, on_leave=on_leave,
                          clearly_other=clearly_other,
                          methods=allowed_methods(device.fixed_camera_bed_ids, task.bed_id))
        late = now > task.deadline_at
        result = CheckResult(
            task_id=task.id or 0, device_id=device.id or 0, idempotency_key=key,
            outcome=upload.outcome, captured_at=upload.captured_at, received_at=now,
            clock_offset_ms=upload.clock_offset_ms, server_distance=decision.distance,
            device_distance=upload.distance, liveness=upload.liveness.model_dump() if upload.liveness else {},
            embedding=vector_to_bytes(upload.embedding) if upload.embedding else None,
            server_embedding=vector_to_bytes(seen.vector) if seen.vector is not None else None,
            server_engine_version=seen.engine or "",
            # Kept until the evidence check has looked at it; then dropped for verified checks (privacy).
            face_crop_jpeg=seen.crop,
            evidence_sha256=seen.sha256 or upload.evidence_sha256, engine_version=upload.engine_version,
            threshold=threshold, late=late, note=upload.note, face_frames=frame_distances(seen, person),
            session=seen.session or {})
        db.add(result)
        task.verdict, task.verdict_at, task.late = decision.verdict, now, late
        # Marks the task answered before the flush, so a second key for the same task in this batch is
        # refused as a replay like it would be across requests.
        task.result_id = -1
        key_frames = [KeyFrame(result_id=0, position=frame.position, role=frame.role, time_s=frame.time_s,
                               sha256=frame.sha256, jpeg=frame.jpeg) for frame in (*seen.key_frames,
                                                                                   *seen.session_frames)]
        item = Accepted(task, result, duplicate=False, key_frames=key_frames)
        accepted[key] = item
        outcomes.append(item)
        flag_details[task.id or 0] = {"distance": decision.distance, "reason": decision.reason,
                                      "device_id": device.id, "late": late}
        audit_entries.append(audit.Entry(
            actor=f"device:{device.id}", action="result.accepted", object_type="check_task", object_id=task.id or 0,
            data={"verdict": decision.verdict.value, "distance": decision.distance, "late": late,
                  "evidence_sha256": seen.sha256 or upload.evidence_sha256, "synthetic_evidence": seen.synthetic}))
    if accepted:
        db.flush()
        for item in accepted.values():
            item.task.result_id = item.result.id
            for frame in item.key_frames:
                frame.result_id = item.result.id or 0
                db.add(frame)
            flag_details[item.task.id or 0]["result_id"] = item.result.id
            db.add(item.task)
        rows = [place_service.scene_row(accepted[key].result.id or 0, scenes[key], upload.scene_source,
                                        upload.place)
                for upload in uploads if (key := upload.idempotency_key) in scenes]
        if rows:
            db.execute(insert(SceneEvidence), rows)
        answered = [item.task for item in accepted.values()]
        flag_service.raise_for_tasks(db, answered, flag_details)
        late = [task for task in answered if task.late]
        if late:
            flag_service.supersede_contradicted(db, late)
            flag_service.note_late_results(db, device_id=device.id or 0, hospital_id=device.hospital_id, tasks=late)
    audit.record_many(db, audit_entries)
    return outcomes


def adhoc_task(db: Session, *, device: Device, bed_id: int, deadline_s: int) -> tuple[CheckTask, str]:
    """The bed's pending task if it has one (a spot check the device has not fetched yet is answered, not
    doubled), else a one-task campaign for the bed's current admission; the task and the bed's label."""
    bed = db.get(Bed, bed_id)
    if bed is None or bed.ward_id != device.ward_id:
        raise NotFound("bed not found in this device's ward")
    admission = db.exec(select(Admission).where(Admission.bed_id == bed.id,
                                                col(Admission.discharged_at).is_(None))).first()
    if admission is None:
        raise NotFound("nobody is admitted to this bed")
    pending = next((t for t in campaign_service.pending_tasks_for_ward(db, ward_id=device.ward_id, device_id=device.id)
                    if t.bed_id == bed.id and t.admission_id == admission.id), None)
    if pending is not None:
        return pending, bed.label
    campaign = campaign_service.create_campaign(
        db, hospital_ids=[device.hospital_id], deadline_s=deadline_s, actor=f"device:{device.id}",
        kind=CampaignKind.ADHOC, admission_ids=[admission.id or 0])
    task = db.exec(select(CheckTask).where(CheckTask.campaign_id == campaign.id)).one()
    return task, bed.label


def _existing_results(db: Session, keys: list[str]) -> dict[str, CheckResult]:
    rows = db.exec(select(CheckResult).where(col(CheckResult.idempotency_key).in_(keys)))
    return {r.idempotency_key: r for r in rows}


def _refusal(db: Session, device: Device, task: CheckTask | None, upload: ResultUpload) -> BedcheckError | None:
    if task is None:
        return NotFound("task not found")
    if task.ward_id != device.ward_id or task.hospital_id != device.hospital_id:
        return TaskNotForDevice()
    inspector = db.exec(select(Campaign.inspector_device_id).where(Campaign.id == task.campaign_id)).first()
    if inspector is not None and inspector != device.id:
        return TaskNotForDevice()  # an inspector's on-site check is answered by the inspector's device only
    if upload.nonce != task.nonce:
        return NonceMismatch()
    if task.result_id is not None:
        return NonceReplayed()
    return None


def _clock_refusal(device: Device, task: CheckTask | None, upload: ResultUpload, now: datetime,
                   tolerance_s: float) -> BedcheckError | None:
    """A capture time without a zone, before its task existed, or after the device's own now, is not evidence.

    The device's clock is put on the server's with the offset the server measured at its last heartbeat
    (else the one the device reports); `tolerance_s` covers drift since and the time an upload takes.
    """
    if upload.captured_at.tzinfo is None:
        return InvalidInput("captured_at needs a time zone (e.g. 2026-12-01T08:00:00+08:00)", field="captured_at")
    if task is None:
        return None
    if abs(upload.clock_offset_ms) > MAX_CLOCK_OFFSET_MS:
        # Beyond what the column holds (a database error would refuse the whole batch), and no clock is that wrong.
        return ClockImplausible("clock_offset_ms is out of range", max_abs_ms=MAX_CLOCK_OFFSET_MS)
    offset_ms = device.clock_offset_ms or upload.clock_offset_ms
    try:
        on_server_clock = upload.captured_at + timedelta(milliseconds=offset_ms)
    except OverflowError:
        return ClockImplausible("captured_at is out of range")
    tolerance = timedelta(seconds=tolerance_s)
    if now > task.deadline_at and not task.issued_at <= on_server_clock <= task.deadline_at:
        # A late result decides its task only as a capture made during the task's life: one dated before the
        # task was issued (or after its deadline) is not an answer to it, whatever the clock tolerance.
        return ClockImplausible("a late result's capture must lie between the task's issue and its deadline",
                                captured_at=on_server_clock.isoformat(), issued_at=task.issued_at.isoformat(),
                                deadline_at=task.deadline_at.isoformat())
    if on_server_clock < task.issued_at - tolerance:
        return ClockImplausible("captured_at is before the task was issued", captured_at=on_server_clock.isoformat(),
                                issued_at=task.issued_at.isoformat())
    if on_server_clock > now + tolerance:
        return ClockImplausible("captured_at is later than the device's own now",
                                captured_at=on_server_clock.isoformat())
    return None


def _replay_of(db: Session, existing: CheckResult, device: Device) -> Accepted | BedcheckError:
    if existing.device_id != device.id:
        return NonceReplayed("this idempotency key belongs to another device's result")
    task = db.get(CheckTask, existing.task_id)
    assert task is not None
    return Accepted(task, existing, duplicate=True)


def sweep_deadlines(db: Session) -> int:
    """Closes pending tasks past their deadline (absent or overdue), flags them, completes campaigns.

    Completion is decided here, every sweep interval, not on every upload: counting a campaign's pending
    tasks per result would cost a scan per upload.
    """
    now = utcnow()
    running = list(db.exec(select(Campaign).where(Campaign.status == CampaignStatus.RUNNING)))
    closed = 0
    for campaign in running:
        if campaign.deadline_at > now:
            campaign_service.complete_if_done(db, campaign_id=campaign.id or 0)
            continue
        changes = campaign_service.mark_expired(db, campaign_id=campaign.id or 0, now=now)
        if changes:
            tasks = [task for chunk in campaign_service.chunks([tid for tid, _ in changes])
                     for task in db.exec(select(CheckTask).where(col(CheckTask.id).in_(chunk)))]
            flag_service.raise_for_tasks(db, tasks)
            silent = flag_service.flag_silent_wards(db, campaign_id=campaign.id or 0, tasks=tasks)
            audit.record(db, actor="system", action="deadline.swept", object_type="campaign",
                         object_id=campaign.id or 0,
                         data={**{v.value: sum(x == v for _, x in changes) for v in {x for _, x in changes}},
                               "silent_wards": silent})
        db.commit()
        campaign_service.complete_if_done(db, campaign_id=campaign.id or 0)
        closed += len(changes)
    leave_service.flag_overdue_leaves(db, now=now)
    db.commit()
    return closed



def embedding_of(result: CheckResult) -> np.ndarray | None:
    return None if result.embedding is None else np.frombuffer(result.embedding, dtype="<f4").astype(np.float64)
