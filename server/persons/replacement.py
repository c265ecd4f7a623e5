"""Replacing a person's enrolled face: an admission-desk action with a reason, audited and flagged for review.

A replaced face is how an impostor would be planted (enroll someone else's photo with `replace=true`: the
real patient then fails every check and the planted face passes), so a replacement is never silent:

- it needs a reason (`REASON_MAX` characters at most) and names its actor in the audit trail;
- hospital staff may replace only for their own hospital's current inpatients (anyone else: not found);
- the earlier faces are deactivated (kept, with thumbnails, for reviewers) only once the new face is
  stored, in the same transaction: a person is never left without an active face;
- it raises a `face_replaced` flag, which reviewers confirm or dismiss like any other.

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
    """Deactivates the person's other active faces now that `new_embedding_id` is stored; audits and flags the
    swap. Returns the flag id (None when there was nothing to replace). Flushes; the caller commits."""
    new = db.get(FaceEmbedding, new_embedding_id)
    if new is None or new.insured_person_id != person_id or not new.is_active:
        raise LastActiveFace("the new face must be stored before the earlier ones are deactivated")
    earlier = list(db.exec(select(FaceEmbedding.id).where(
        FaceEmbedding.insured_person_id == person_id, FaceEmbedding.is_active == True,  # noqa: E712
        FaceEmbedding.id != new_embedding_id)))
    if not earlier:
        return None
    db.exec(update(FaceEmbedding).where(col(FaceEmbedding.id).in_(earlier))  # type: ignore[call-overload]
            .values(is_active=False))
    admission = current_admission(db, person_id=person_id, hospital_id=staff_hospital_id)
    flag = flag_service.raise_flag(db, kind=FlagKind.FACE_REPLACED, details={
        "deactivated_embedding_ids": earlier, "new_embedding_id": new_embedding_id, "replace_reason": reason},
        hospital_id=staff_hospital_id if staff_hospital_id is not None else (
            admission.hospital_id if admission else None))
    flag.insured_person_id, flag.admission_id = person_id, admission.id if admission else None
    db.add(flag)
    db.flush()
    audit.record(db, actor=actor, action="enrollment.face_replaced", object_type="insured_person",
                 object_id=person_id, data={"deactivated_embedding_ids": earlier, "new_embedding_id": new_embedding_id,
                                            "reason": reason, "flag_id": flag.id})
    return flag.id
