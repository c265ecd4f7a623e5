"""Device results -> verdicts and flags; the deadline sweep."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.errors import InvalidInput, NonceMismatch, NonceReplayed, NotFound, TaskNotForDevice
from models.verdicts import Verdict
from models.wire import ResultUpload
from server.audit import service as audit
from server.campaigns import service as campaign_service
from server.campaigns.tables import Campaign, CampaignStatus, CheckTask
from server.checks.policy import decide
from server.checks.tables import CheckResult
from server.db import utcnow
from server.devices.tables import Device
from server.flags import service as flag_service
from server.persons.service import enrolled_vectors, vector_to_bytes


@dataclass(frozen=True)
class Accepted:
    task: CheckTask
    result: CheckResult
    duplicate: bool


def submit_result(db: Session, *, device: Device, upload: ResultUpload, threshold: float,
                  keep_verified_crops: bool) -> Accepted:
    """Accepts one result exactly once (idempotent on its key) and turns it into a verdict and flags."""
    existing = _by_key(db, upload.idempotency_key)
    if existing is not None:
        return _replay_of(db, existing, device)
    task = db.get(CheckTask, upload.task_id)
    if task is None:
        raise NotFound("task not found")
    if task.ward_id != device.ward_id or task.hospital_id != device.hospital_id:
        _refuse(db, device, task, "task_not_for_device")
        raise TaskNotForDevice()
    if upload.nonce != task.nonce:
        _refuse(db, device, task, "nonce_mismatch")
        raise NonceMismatch()
    if task.result_id is not None:
        _refuse(db, device, task, "nonce_replayed")
        raise NonceReplayed()
    crop = _checked_crop(upload)

    enrolled = enrolled_vectors(db, [task.insured_person_id]).get(task.insured_person_id)
    decision = decide(upload, enrolled, threshold)
    now = utcnow()
    late = now > task.deadline_at
    result = CheckResult(
        task_id=task.id or 0, device_id=device.id or 0, idempotency_key=upload.idempotency_key,
        outcome=upload.outcome, captured_at=upload.captured_at, received_at=now,
        clock_offset_ms=upload.clock_offset_ms, server_distance=decision.distance,
        device_distance=upload.distance, liveness=upload.liveness.model_dump() if upload.liveness else {},
        embedding=vector_to_bytes(upload.embedding) if upload.embedding else None,
        # Privacy: a verified check's face is not kept unless a setting asks for it.
        face_crop_jpeg=crop if (decision.verdict != Verdict.VERIFIED or keep_verified_crops) else None,
        evidence_sha256=upload.evidence_sha256, engine_version=upload.engine_version,
        threshold=threshold, late=late, note=upload.note)
    db.add(result)
    try:
        db.flush()
    except IntegrityError:
        db.rollback()  # the same key raced in from a retry: answer as for a duplicate
        existing = _by_key(db, upload.idempotency_key)
        if existing is None:
            raise
        return _replay_of(db, existing, device)
    task.result_id, task.verdict, task.verdict_at, task.late = result.id, decision.verdict, now, late
    db.add(task)
    details = {"distance": decision.distance, "reason": decision.reason, "result_id": result.id,
               "device_id": device.id, "late": late}
    flag_service.raise_for_tasks(db, [task], {task.id or 0: details})
    audit.record(db, actor=f"device:{device.id}", action="result.accepted", object_type="check_task",
                 object_id=task.id or 0, data={"verdict": decision.verdict.value, "distance": decision.distance,
                                               "late": late, "evidence_sha256": upload.evidence_sha256})
    db.commit()
    return Accepted(task, result, duplicate=False)


def _by_key(db: Session, key: str) -> CheckResult | None:
    return db.exec(select(CheckResult).where(CheckResult.idempotency_key == key)).first()


def _replay_of(db: Session, existing: CheckResult, device: Device) -> Accepted:
    if existing.device_id != device.id:
        raise NonceReplayed("this idempotency key belongs to another device's result")
    task = db.get(CheckTask, existing.task_id)
    assert task is not None
    return Accepted(task, existing, duplicate=True)


def _refuse(db: Session, device: Device, task: CheckTask, code: str) -> None:
    audit.record(db, actor=f"device:{device.id}", action="result.refused", object_type="check_task",
                 object_id=task.id or 0, data={"code": code})
    db.commit()


def _checked_crop(upload: ResultUpload) -> bytes | None:
    if upload.face_crop_jpeg_b64 is None:
        return None
    try:
        crop = base64.b64decode(upload.face_crop_jpeg_b64, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInput("face_crop_jpeg_b64 is not valid base64") from e
    if upload.evidence_sha256 and hashlib.sha256(crop).hexdigest() != upload.evidence_sha256:
        raise InvalidInput("evidence_sha256 does not match the uploaded crop")
    return crop


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
        changes = campaign_service.mark_expired(db, now=now)
        if changes:
            tasks = list(db.exec(select(CheckTask).where(col(CheckTask.id).in_([tid for tid, _ in changes]))))
            flag_service.raise_for_tasks(db, tasks)
            audit.record(db, actor="system", action="deadline.swept", object_type="campaign",
                         object_id=campaign.id or 0,
                         data={"absent": sum(v == Verdict.ABSENT for _, v in changes),
                               "overdue": sum(v == Verdict.OVERDUE for _, v in changes)})
        db.commit()
        campaign_service.complete_if_done(db, campaign_id=campaign.id or 0)
        closed += len(changes)
    return closed


def embedding_of(result: CheckResult) -> np.ndarray | None:
    return None if result.embedding is None else np.frombuffer(result.embedding, dtype="<f4").astype(np.float64)
