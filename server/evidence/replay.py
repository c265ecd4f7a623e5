"""Evidence used once, against the database: a result's images fingerprinted, compared with the earlier
captures of the same bed, person or device (any capture at all for a byte copy), and kept as rows.

Plain functions on a stored result and a session, so the evidence check can run them in any process.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from server.campaigns.tables import CheckTask
from server.checks.tables import CheckResult, KeyFrame
from server.evidence.fingerprints import (
    Earlier,
    EvidencePart,
    Fingerprint,
    Reuse,
    corroborated,
    find_reuse,
    fingerprint,
    reuse_reason,
)
from server.evidence.tables import EvidenceFingerprint
from server.places.tables import SceneEvidence


@dataclass(frozen=True)
class Capture:
    """Whose capture a result is: what earlier captures it is compared with."""

    result_id: int
    task_id: int
    bed_id: int
    insured_person_id: int
    device_id: int

    @classmethod
    def of(cls, result: CheckResult, task: CheckTask) -> Capture:
        return cls(result.id or 0, task.id or 0, task.bed_id, task.insured_person_id, result.device_id)

    def related(self, other: Capture) -> bool:
        """Another task's capture of the same bed, person or device."""
        return other.task_id != self.task_id and (other.bed_id == self.bed_id or other.device_id == self.device_id
                                                  or other.insured_person_id == self.insured_person_id)


def fingerprints_of(db: Session, result: CheckResult) -> list[Fingerprint]:
    """Every image the result still holds (crop, scene, key frames), fingerprinted; before any is dropped."""
    out = []
    if result.face_crop_jpeg is not None:
        out.append(fingerprint(EvidencePart.CROP, 0, result.face_crop_jpeg))
    scene = db.get(SceneEvidence, result.id)
    if scene is not None and scene.scene_jpeg is not None:
        out.append(fingerprint(EvidencePart.SCENE, 0, scene.scene_jpeg))
    for frame in db.exec(select(KeyFrame).where(KeyFrame.result_id == result.id).order_by(col(KeyFrame.position))):
        if frame.jpeg is not None:
            out.append(fingerprint(EvidencePart.KEY_FRAME, frame.position, frame.jpeg))
    return out


def watermark(db: Session) -> int:
    """The newest kept fingerprint's id: what was written before a check read its earlier captures."""
    return int(db.exec(select(func.max(EvidenceFingerprint.id))).one() or 0)


def earlier_fingerprints(db: Session, capture: Capture, mine: Sequence[Fingerprint], since: datetime,
                         after_id: int = 0) -> list[Earlier]:
    """Kept fingerprints of other tasks: any with one of `mine`'s sha256, and those of the same bed, person or
    device since `since` (only those written after `after_id`, when given)."""
    if not mine:
        return []
    related = or_(EvidenceFingerprint.bed_id == capture.bed_id, EvidenceFingerprint.device_id == capture.device_id,
                  EvidenceFingerprint.insured_person_id == capture.insured_person_id)
    same_bytes = col(EvidenceFingerprint.sha256).in_(sorted({f.sha256 for f in mine}))
    rows = db.exec(select(EvidenceFingerprint).where(
        EvidenceFingerprint.task_id != capture.task_id, EvidenceFingerprint.result_id < capture.result_id,
        EvidenceFingerprint.id > after_id, or_(same_bytes, related & (EvidenceFingerprint.created_at >= since)))
        .order_by(col(EvidenceFingerprint.id)))
    return [Earlier(row.result_id, row.task_id,
                    Fingerprint(EvidencePart(row.part), row.position, row.sha256, row.phash)) for row in rows]


def replay_details(capture: Capture, reuses: Sequence[Reuse], *, skip_crop_copy: bool) -> dict[str, Any] | None:
    """The `replayed_evidence` flag's details, or None. A crop's byte copy is already a `replayed_photo`
    (same_image) when `skip_crop_copy`: not flagged twice."""
    shown = [r for r in corroborated(reuses) if not (skip_crop_copy and r.part == EvidencePart.CROP and r.exact)]
    if not shown:
        return None
    return {"reason": reuse_reason(shown), "result_id": capture.result_id,
            "earlier_result_id": shown[0].earlier_result_id, "earlier_task_id": shown[0].earlier_task_id,
            "reused": [r.as_details() for r in shown]}


def fingerprint_rows(capture: Capture, mine: Iterable[Fingerprint]) -> list[EvidenceFingerprint]:
    return [EvidenceFingerprint(result_id=capture.result_id, task_id=capture.task_id, bed_id=capture.bed_id,
                                insured_person_id=capture.insured_person_id, device_id=capture.device_id,
                                part=f.part.value, position=f.position, sha256=f.sha256, phash=f.phash)
            for f in mine]


def check_replay(db: Session, capture: Capture, mine: Sequence[Fingerprint], since: datetime,
                 batch: Sequence[tuple[Capture, Fingerprint]] = (), *, skip_crop_copy: bool = False,
                 after_id: int = 0) -> dict[str, Any] | None:
    """The replay finding for one capture: against the database (what was written after `after_id`) and the
    captures checked before it in the same run (`batch`), whose fingerprints are not written yet."""
    earlier = earlier_fingerprints(db, capture, mine, since, after_id) + _among(capture, mine, batch)
    return replay_details(capture, find_reuse(mine, earlier), skip_crop_copy=skip_crop_copy)


def written_after(db: Session, after_id: int) -> list[tuple[Capture, Fingerprint]]:
    """Fingerprints written after `after_id` (by another worker, while this one was checking)."""
    rows = db.exec(select(EvidenceFingerprint).where(EvidenceFingerprint.id > after_id)
                   .order_by(col(EvidenceFingerprint.id)))
    return [(Capture(r.result_id, r.task_id, r.bed_id, r.insured_person_id, r.device_id),
             Fingerprint(EvidencePart(r.part), r.position, r.sha256, r.phash)) for r in rows]


def check_late(capture: Capture, mine: Sequence[Fingerprint], written: Sequence[tuple[Capture, Fingerprint]], *,
               skip_crop_copy: bool = False) -> dict[str, Any] | None:
    """The replay finding against what other workers wrote meanwhile (`written_after`), without the database."""
    return replay_details(capture, find_reuse(mine, _among(capture, mine, written)), skip_crop_copy=skip_crop_copy)


def _among(capture: Capture, mine: Sequence[Fingerprint], others: Sequence[tuple[Capture, Fingerprint]]
           ) -> list[Earlier]:
    """Of `others`, the earlier captures `capture` is compared with: related ones, and any with the same bytes."""
    shas = {m.sha256 for m in mine}
    return [Earlier(c.result_id, c.task_id, f) for c, f in others
            if c.result_id < capture.result_id and c.task_id != capture.task_id
            and (capture.related(c) or f.sha256 in shas)]
