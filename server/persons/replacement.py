"""Replacing a person's enrolled face: an admission-desk action with a reason, audited and flagged for review.

A replaced face is how an impostor would be planted (enroll someone else's photo with `replace=true`: the
real patient then fails every check and the planted face passes), so a replacement is never silent:

- it needs a reason (`REASON_MAX` characters at most) and names its actor in the audit trail;
- hospital staff may replace only for their own hospital's current inpatients (anyone else: not found);
- it raises a `face_replaced` flag, which reviewers confirm or dismiss like any other;
- a hospital's replacement waits for that review: the new face is stored *pending* (inactive, so no check,
  roster, 1:N search or naming sees it) and the person's current faces stay active, so a planted face flips
  no verdict before two bureau reviewers (first and final review) confirm it. Confirmation activates it
  and retires the earlier faces; dismissal leaves it inactive (server/persons/face_review.py, run by the
  flag workflow). The person is never left without an active face;
- a bureau replacement (admin desk, bulk CLI) takes effect at once: the earlier faces are deactivated (kept,
  with thumbnails, for reviewers) once the new face is stored, in the same transaction; the flag reviews it
  afterwards.

Every path (desk API, bulk CLI) goes through `check_replacement` and `replace_faces`.
"""

from __future__ import annotations

from sqlmodel import Session, col, select, update

from models.errors import InvalidInput, LastActiveFace, NotFound
from models.verdicts import FlagKind
from server.admissions.tables import Admission
from server.audit import service as audit
from server.flags import service as flag_service
from server.persons.tables import FaceEmbedding

REASON_MAX = 500


def current_admission(db: Session, *, person_id: int, hospital_id: int | None = None) -> Admission | None:
    """The person's current admission (in this hospital when given)."""
    stmt = select(Admission).where(Admission.insured_person_id == person_id, col(Admission.discharged_at).is_(None))
    if hospital_id is not None:
        stmt = stmt.where(Admission.hospital_id == hospital_id)
    return db.exec(stmt.order_by(col(Admission.id).desc())).first()


def check_replacement(db: Session, *, person_id: int | None, reason: str, staff_hospital_id: int | None) -> str:
    """Raises unless this replacement may go ahead; returns the cleaned reason."""
    cleaned = reason.strip()
    if not cleaned:
        raise InvalidInput("replacing an enrolled face needs a reason", field="reason")
    if len(cleaned) > REASON_MAX:
        raise InvalidInput(f"the reason has at most {REASON_MAX} characters", field="reason")
    if staff_hospital_id is not None and (
            person_id is None or current_admission(db, person_id=person_id, hospital_id=staff_hospital_id) is None):
        raise NotFound("insured person not found among your hospital's current admissions")
    return cleaned


def replace_faces(db: Session, *, person_id: int, new_embedding_id: int, reason: str, actor: str,
                  staff_hospital_id: int | None) -> int | None:
    """Flags the replacement of the person's active faces by the stored `new_embedding_id` and audits it: at
    once for the bureau (earlier faces deactivated), pending review for hospital staff (the new face made
    inactive until the flag is confirmed). Returns the flag id (None when there was nothing to replace: the
    new face is then simply enrolled). Flushes; the caller commits."""
    new = db.get(FaceEmbedding, new_embedding_id)
    if new is None or new.insured_person_id != person_id or not new.is_active:
        raise LastActiveFace("the new face must be stored before the earlier ones are deactivated")
    earlier = _other_active_faces(db, person_id, new_embedding_id)
    if not earlier:
        return None
    pending = staff_hospital_id is not None
    if pending:
        new.is_active = False  # stored for the reviewers; the current faces keep deciding the checks
        db.add(new)
        details: dict[str, object] = {"pending_embedding_id": new_embedding_id, "active_embedding_ids": earlier}
    else:
        db.exec(update(FaceEmbedding).where(col(FaceEmbedding.id).in_(earlier))  # type: ignore[call-overload]
                .values(is_active=False))
        details = {"deactivated_embedding_ids": earlier, "new_embedding_id": new_embedding_id}
    return _flag_for_review(db, person_id=person_id, staff_hospital_id=staff_hospital_id, actor=actor,
                            details={**details, "replace_reason": reason}, audited={**details, "reason": reason},
                            action="enrollment.face_replacement_pending" if pending else "enrollment.face_replaced")


def hold_addition(db: Session, *, person_id: int, new_embedding_id: int, actor: str,
                  staff_hospital_id: int) -> int | None:
    """A face hospital staff add for a person who already has active faces: stored inactive until the review
    flag's final confirmation (which adds it, retiring nothing). Returns the flag id (None when the person had
    no active face: the new one is then simply enrolled). Flushes; the caller commits."""
    new = db.get(FaceEmbedding, new_embedding_id)
    assert new is not None and new.insured_person_id == person_id
    active = _other_active_faces(db, person_id, new_embedding_id)
    if not active:
        return None
    new.is_active = False
    db.add(new)
    details: dict[str, object] = {"pending_embedding_id": new_embedding_id, "active_embedding_ids": active,
                                  "addition": True}
    return _flag_for_review(db, person_id=person_id, staff_hospital_id=staff_hospital_id, actor=actor,
                            details=details, audited=details, action="enrollment.face_addition_pending")


def _other_active_faces(db: Session, person_id: int, new_embedding_id: int) -> list[int]:
    return list(db.exec(select(FaceEmbedding.id).where(
        FaceEmbedding.insured_person_id == person_id, FaceEmbedding.is_active == True,  # noqa: E712
        FaceEmbedding.id != new_embedding_id)))


def _flag_for_review(db: Session, *, person_id: int, staff_hospital_id: int | None, actor: str,
                     details: dict[str, object], audited: dict[str, object], action: str) -> int | None:
    """The `face_replaced` flag (`details`) on the person's current admission (in the staff's hospital), and its
    audit record (`audited`, with the flag's id)."""
    admission = current_admission(db, person_id=person_id, hospital_id=staff_hospital_id)
    flag = flag_service.raise_flag(db, kind=FlagKind.FACE_REPLACED, details=details,
                                   hospital_id=staff_hospital_id if staff_hospital_id is not None else (
                                       admission.hospital_id if admission else None))
    flag.insured_person_id, flag.admission_id = person_id, admission.id if admission else None
    db.add(flag)
    db.flush()
    audit.record(db, actor=actor, action=action, object_type="insured_person", object_id=person_id,
                 data={**audited, "flag_id": flag.id})
    return flag.id
