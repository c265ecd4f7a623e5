"""What the review of a hospital's face replacement does to the faces (called by the flag workflow).

A replacement made by hospital staff is stored pending (server/persons/replacement.py): the `face_replaced`
flag carries `pending_embedding_id`. Its final confirmation activates that face and retires the person's
other active faces; a dismissal leaves it inactive; a dismissal after an upheld appeal against a
confirmation puts the earlier faces back. Each step is audited, and the person always keeps an active face.
A bureau replacement (no pending face) took effect when it was made: its review changes no face.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select, update

from models.verdicts import FlagKind
from server.audit import service as audit
from server.flags.tables import Flag, FlagStatus
from server.persons.tables import FaceEmbedding


def on_transition(db: Session, *, flag: Flag, before: FlagStatus, after: FlagStatus, actor: str) -> None:
    """Runs in the move's transaction; does nothing for other kinds or a bureau replacement."""
    pending_id = flag.details.get("pending_embedding_id")
    if flag.kind != FlagKind.FACE_REPLACED or pending_id is None or flag.insured_person_id is None:
        return
    new = db.get(FaceEmbedding, int(pending_id))
    if new is None or new.insured_person_id != flag.insured_person_id:
        return
    review = flag.details.get("face_review") or {}
    if after == FlagStatus.CONFIRMED and not new.is_active:
        # An addition joins the person's faces; a replacement retires the others.
        retired = [] if flag.details.get("addition") else list(db.exec(select(FaceEmbedding.id).where(
            FaceEmbedding.insured_person_id == flag.insured_person_id, FaceEmbedding.is_active == True)))  # noqa: E712
        new.is_active = True
        db.add(new)
        if retired:
            db.exec(update(FaceEmbedding).where(col(FaceEmbedding.id).in_(retired))
                    .values(is_active=False))
        _record(db, flag, actor, "activated", {"deactivated_embedding_ids": retired})
    elif after == FlagStatus.DISMISSED and review.get("on") == "activated" and new.is_active:
        restored = [int(i) for i in review.get("deactivated_embedding_ids", [])]
        if restored or flag.details.get("addition"):  # never without a face: undo when the earlier ones return
            db.exec(update(FaceEmbedding).where(col(FaceEmbedding.id).in_(restored))
                    .values(is_active=True))
            new.is_active = False
            db.add(new)
        _record(db, flag, actor, "reverted", {"reactivated_embedding_ids": restored})
    elif after == FlagStatus.DISMISSED and not new.is_active:
        _record(db, flag, actor, "kept_inactive", {})


def _record(db: Session, flag: Flag, actor: str, on: str, data: dict[str, Any]) -> None:
    flag.details = {**flag.details, "face_review": {"on": on, **data}}
    db.add(flag)
    audit.record(db, actor=actor, action=f"enrollment.face_replacement_{on}", object_type="insured_person",
                 object_id=flag.insured_person_id or 0,
                 data={"flag_id": flag.id, "embedding_id": flag.details["pending_embedding_id"], **data})
