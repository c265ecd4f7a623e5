"""The flag workflow: 机器初审 → 人工复核 → 终审, the hospital's appeal, and the system's own closes.

Every status change of a flag, from any door (console, JSON API, CLI, jobs), goes through this module and
is checked against one table, `TRANSITIONS`: which move exists, at which level, by which roles, with which
review reasons, and which side effects run with it (in the same transaction). Rules beyond the table:
- the final review is made by another user than the first review, and the decision on an appeal by a third
  person (neither the first reviewer nor whoever confirmed the flag): `excluded_deciders`;
- an appeal is filed with a statement (`server/flags/appeals.py`), never as a bare status change;
- system moves (a late result superseding a flag, a discharge resolving a 叠床 overlap) are made by no user.
Each move records a `Review` row (who, when, why) and an audit record.

To add a status or a side effect (money on confirmation, a pending face, leave), add it here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select

from models.errors import InvalidInput, NotFound, PermissionDenied, SameReviewer, TransitionNotAllowed
from models.verdicts import FlagKind
from server.accounts.tables import Role, UserAccount
from server.audit import service as audit
from server.db import claim_write, utcnow
from server.flags.tables import Flag, FlagStatus, Review
from server.funds import service as funds_service
from server.persons import face_review


class ReviewReason(StrEnum):
    EVIDENCE_CLEAR = "evidence_clear"
    FACE_MISMATCH = "face_mismatch"
    BED_EMPTY = "bed_empty"
    FALSE_MATCH = "false_match"
    # 实地: the scene beside the bed's reference shows another place / the bed was re-arranged since.
    PLACE_ELSEWHERE = "place_elsewhere"
    REFERENCE_OUTDATED = "reference_outdated"
    VALID_EXEMPTION = "valid_exemption"
    DEVICE_FAULT = "device_fault"
    APPEAL_ACCEPTED = "appeal_accepted"
    APPEAL_REJECTED = "appeal_rejected"
    OTHER = "other"


class Recommendation(StrEnum):
    """A first review recommends (机器初审 + 人工复核: 建议确认 / 建议排除); the final review decides."""

    CONFIRM = "recommend_confirm"
    DISMISS = "recommend_dismiss"


Decision = FlagStatus | Recommendation


def parse_decision(value: str) -> Decision | None:
    """A decision posted by a form or the API: a recommendation (first review) or a status (final review)."""
    for kind in (Recommendation, FlagStatus):
        try:
            return kind(value)
        except ValueError:
            continue
    return None


class Level(StrEnum):
    FIRST_REVIEW = "first_review"
    FINAL_REVIEW = "final_review"
    APPEAL = "appeal"
    SYSTEM = "system"


# (db, flag after the move, acting user or None for the system)
Effect = Callable[[Session, Flag, UserAccount | None], None]

R = ReviewReason
# Which reasons fit which decision (in the order a form offers them): a dismissal is never "evidence is
# clear", an appeal reason only answers an appeal. A first review may lean either way; another person decides.
CONFIRMING = (R.EVIDENCE_CLEAR, R.FACE_MISMATCH, R.BED_EMPTY, R.PLACE_ELSEWHERE)
DISMISSING = (R.FALSE_MATCH, R.VALID_EXEMPTION, R.DEVICE_FAULT, R.REFERENCE_OUTDATED)
FIRST_REVIEW_REASONS = (*CONFIRMING, *DISMISSING, R.OTHER)
K = FlagKind
_FACE = ((R.FACE_MISMATCH, R.EVIDENCE_CLEAR), (R.FALSE_MATCH, R.REFERENCE_OUTDATED, R.DEVICE_FAULT))
_LIVENESS = ((R.EVIDENCE_CLEAR,), (R.FALSE_MATCH, R.DEVICE_FAULT))
_BED = ((R.BED_EMPTY, R.EVIDENCE_CLEAR), (R.VALID_EXEMPTION, R.DEVICE_FAULT))
_SILENCE = ((R.EVIDENCE_CLEAR,), (R.DEVICE_FAULT, R.VALID_EXEMPTION))
# The reasons that fit each kind, (confirming, dismissing): no "bed empty" for an impersonation, no "false
# match" for a bed nobody answered. Kinds not listed take every reason of the side.
KIND_REASONS: dict[FlagKind, tuple[tuple[ReviewReason, ...], tuple[ReviewReason, ...]]] = {
    K.IMPERSONATED: _FACE, K.CROSS_HOSPITAL_FACE: _FACE, K.DUPLICATE_IDENTITY: _FACE,
    K.UNRECOGNISED: _FACE,
    K.SPOOF: _LIVENESS, K.LIVENESS_MISMATCH: _LIVENESS, K.REPLAYED_PHOTO: _LIVENESS, K.TAMPERED_EVIDENCE: _LIVENESS,
    K.ABSENT: _BED, K.LEAVE_OVERDUE: _BED, K.LEAVE_OVERNIGHT: _BED,
    K.OVERDUE: _SILENCE, K.LATE: _SILENCE, K.DEVICE_OFFLINE: _SILENCE,
    K.PLACE_MISMATCH: ((R.PLACE_ELSEWHERE, R.EVIDENCE_CLEAR), (R.REFERENCE_OUTDATED, R.DEVICE_FAULT)),
}
del K, R, _FACE, _LIVENESS, _BED, _SILENCE
REVIEWER_ROLES = frozenset({Role.REVIEWER, Role.SUPERVISOR, Role.ADMIN})
FINAL_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})
HOSPITAL_ROLES = frozenset({Role.HOSPITAL_STAFF})


@dataclass(frozen=True)
class Move:
    level: Level
    roles: frozenset[Role] = frozenset()  # empty: the system's move, no user may make it
    reasons: tuple[ReviewReason, ...] = ()
    effects: tuple[Effect, ...] = ()


S, R = FlagStatus, ReviewReason
TRANSITIONS: dict[tuple[FlagStatus, FlagStatus], Move] = {
    # A first review never closes a flag: "排除疑点" too goes to a final reviewer, another person.
    (S.OPEN, S.FIRST_REVIEWED): Move(Level.FIRST_REVIEW, REVIEWER_ROLES, FIRST_REVIEW_REASONS),
    (S.FIRST_REVIEWED, S.CONFIRMED): Move(Level.FINAL_REVIEW, FINAL_ROLES, (*CONFIRMING, R.OTHER)),
    (S.FIRST_REVIEWED, S.DISMISSED): Move(Level.FINAL_REVIEW, FINAL_ROLES, (*DISMISSING, R.OTHER)),
    # The hospital answers once a human has looked at the flag, or after it was confirmed.
    (S.FIRST_REVIEWED, S.APPEALED): Move(Level.APPEAL, HOSPITAL_ROLES),
    (S.CONFIRMED, S.APPEALED): Move(Level.APPEAL, HOSPITAL_ROLES),
    (S.APPEALED, S.CONFIRMED): Move(Level.FINAL_REVIEW, FINAL_ROLES, (R.APPEAL_REJECTED, *CONFIRMING, R.OTHER)),
    (S.APPEALED, S.DISMISSED): Move(Level.FINAL_REVIEW, FINAL_ROLES, (R.APPEAL_ACCEPTED, *DISMISSING, R.OTHER)),
    # The system closes only what no human has decided yet.
    (S.OPEN, S.SUPERSEDED): Move(Level.SYSTEM),
    (S.FIRST_REVIEWED, S.SUPERSEDED): Move(Level.SYSTEM),
    (S.OPEN, S.RESOLVED): Move(Level.SYSTEM),
    (S.FIRST_REVIEWED, S.RESOLVED): Move(Level.SYSTEM),
}
del S, R


def reasons_for(current: FlagStatus, to: FlagStatus) -> tuple[ReviewReason, ...]:
    """The review reasons that fit moving a flag from `current` to `to` (none: no such review)."""
    move = TRANSITIONS.get((current, to))
    return move.reasons if move else ()


def target_of(decision: Decision) -> FlagStatus:
    return FlagStatus.FIRST_REVIEWED if isinstance(decision, Recommendation) else decision


def decision_reasons(flag: Flag, decision: Decision) -> tuple[ReviewReason, ...]:
    """The reasons that fit this decision on this flag: the move's reasons, narrowed to the side the decision
    takes (confirm or dismiss) and to what fits the flag's kind; 'other' and the appeal's own reasons stay."""
    move = TRANSITIONS.get((flag.status, target_of(decision)))
    if move is None:
        return ()
    confirm = decision in (Recommendation.CONFIRM, FlagStatus.CONFIRMED)
    if decision == FlagStatus.FIRST_REVIEWED:
        return ()  # a first review is a recommendation, one side or the other
    side = KIND_REASONS.get(flag.kind, (CONFIRMING, DISMISSING))[0 if confirm else 1]
    keep = {*side, ReviewReason.OTHER, ReviewReason.APPEAL_REJECTED if confirm else ReviewReason.APPEAL_ACCEPTED}
    return tuple(r for r in move.reasons if r in keep)


def as_decision(to: Decision, reason: str) -> Decision:
    """A bare first review (older API clients, bulk forms) recommends the side its reason takes; 'other' and a
    reason of neither side leave it bare (refused by `review`)."""
    if to != FlagStatus.FIRST_REVIEWED:
        return to
    return (Recommendation.CONFIRM if reason in CONFIRMING else Recommendation.DISMISS if reason in DISMISSING
            else to)


def decisions(flag: Flag, moves: dict[FlagStatus, Move]) -> list[Decision]:
    """What a form offers for these moves: the two recommendations in place of a bare first review."""
    out: list[Decision] = []
    for to, move in moves.items():
        if move.level == Level.APPEAL:
            continue
        out += list(Recommendation) if to == FlagStatus.FIRST_REVIEWED else [to]
    return out


def first_reviewer(db: Session, flag: Flag) -> str | None:
    """Who made the flag's latest first review (username), if anyone."""
    return db.exec(select(Review.actor).where(Review.flag_id == flag.id, Review.to_status == FlagStatus.FIRST_REVIEWED)
                   .order_by(col(Review.id).desc()).limit(1)).first()


def excluded_deciders(db: Session, flag: Flag) -> set[str]:
    """Who may not make the flag's next final decision: its first reviewer and, for the decision on an
    appeal, whoever confirmed the flag the hospital appealed against (the appeal is decided by a third person)."""
    people = {first_reviewer(db, flag)}
    if flag.status == FlagStatus.APPEALED:
        people |= set(db.exec(select(Review.actor).where(Review.flag_id == flag.id,
                                                         Review.to_status == FlagStatus.CONFIRMED)))
    return {p for p in people if p}


def available_moves(db: Session, *, flag: Flag, user: UserAccount) -> dict[FlagStatus, Move]:
    """The moves this user may make on this flag now (what the console offers)."""
    excluded = excluded_deciders(db, flag)
    return {to: move for (frm, to), move in TRANSITIONS.items()
            if frm == flag.status and user.role in move.roles
            and not (move.level == Level.FINAL_REVIEW and user.username in excluded)
            and not (user.role == Role.HOSPITAL_STAFF and user.hospital_id != flag.hospital_id)}


def check_move(db: Session, *, flag: Flag, to: FlagStatus, actor: UserAccount, level: Level | None = None) -> Move:
    """The move from the flag's current status (read under the write lock) to `to`, or the refusal."""
    claim_write(db)
    db.refresh(flag)
    move = TRANSITIONS.get((flag.status, to))
    if move is None or (level is not None and move.level != level) or move.level == Level.SYSTEM:
        how = "an appeal is filed with a statement" if move and move.level == Level.APPEAL else "not allowed"
        raise TransitionNotAllowed(f"a flag cannot go from {flag.status.value} to {to.value} ({how})",
                                   from_status=flag.status.value, to_status=to.value)
    if actor.role == Role.HOSPITAL_STAFF and actor.hospital_id != flag.hospital_id:
        raise NotFound("flag not found")
    if actor.role not in move.roles:
        raise PermissionDenied(f"{actor.role.value} cannot move a flag to {to.value}")
    if move.level == Level.FINAL_REVIEW and actor.username in excluded_deciders(db, flag):
        raise SameReviewer("the appeal is decided by a third person, neither the first reviewer nor the confirmer"
                           if flag.status == FlagStatus.APPEALED else None)
    return move


def review(db: Session, *, flag: Flag, to: Decision, actor: UserAccount, reason: str, comment: str = "") -> Flag:
    """First review (a recommendation, 建议确认 or 建议排除) or final review (confirmed or dismissed): a reason
    that fits the decision and the flag's kind (and a comment, required for 'other'); commits."""
    comment = comment.strip()
    if actor.role not in REVIEWER_ROLES | FINAL_ROLES:
        raise PermissionDenied("hospital staff answer a flag with an appeal; they do not review it")
    try:
        code = ReviewReason(reason)
    except ValueError as e:
        raise InvalidInput(f"unknown review reason {reason!r}", field="reason", text_key="err_choose_reason",
                           allowed=[r.value for r in ReviewReason]) from e
    if code == ReviewReason.OTHER and not comment:
        raise InvalidInput("a comment is required when the reason is 'other'", field="comment",
                           text_key="err_comment_required")
    if to == FlagStatus.FIRST_REVIEWED:
        to = as_decision(to, code.value)
        if code == ReviewReason.OTHER:
            raise InvalidInput("a first review recommends: recommend_confirm or recommend_dismiss", field="to",
                               text_key="err_choose_decision", allowed=[r.value for r in Recommendation])
    decision, to = to, target_of(to)
    current = flag.status
    move = TRANSITIONS.get((current, to))
    if move is not None and move.level == Level.APPEAL:
        raise TransitionNotAllowed("an appeal is filed with a statement, not as a review",
                                   from_status=current.value, to_status=to.value)
    check_move(db, flag=flag, to=to, actor=actor)
    if code not in decision_reasons(flag, decision):
        raise InvalidInput(f"reason {code.value!r} does not fit this decision on a {flag.kind.value} flag",
                           field="reason", text_key="err_reason_mismatch",
                           allowed=[r.value for r in decision_reasons(flag, decision)])
    text = f"{code.value}: {comment}" if comment else code.value
    data: dict[str, Any] = {"reason": code.value}
    if isinstance(decision, Recommendation):
        data["recommend"] = decision.value
        flag.details = {**flag.details, "recommendation": {"decision": decision.value, "reason": code.value,
                                                           "by": actor.username}}
    return apply_move(db, flag=flag, to=to, actor=actor, reason=text[:500], data=data)


def apply_move(db: Session, *, flag: Flag, to: FlagStatus, actor: UserAccount | None, reason: str,
               data: dict[str, Any] | None = None, commit: bool = True) -> Flag:
    """Records a checked move: Review row, audit record, status, side effects; commits unless told not to."""
    move = TRANSITIONS[(flag.status, to)]
    db.add(Review(flag_id=flag.id or 0, from_status=flag.status, to_status=to, reason=reason[:500],
                  actor=actor.username if actor else "system"))
    audit.record(db, actor=f"user:{actor.id}" if actor else "system", action="flag.transition", object_type="flag",
                 object_id=flag.id or 0,
                 data={"from": flag.status.value, "to": to.value, "level": move.level.value, **(data or {})})
    before = flag.status
    flag.status, flag.updated_at = to, utcnow()
    db.add(flag)
    # Money follows the decision (refused funds and deductions on confirmation, undone on an upheld appeal).
    funds_service.on_transition(db, flag=flag, before=before, after=to,
                                actor=f"user:{actor.id}" if actor else "system")
    # A hospital's face replacement takes effect only on confirmation (server/persons/face_review.py).
    face_review.on_transition(db, flag=flag, before=before, after=to, actor=f"user:{actor.id}" if actor else "system")
    for effect in move.effects:
        effect(db, flag, actor)
    if commit:
        db.commit()
    return flag


def system_move(db: Session, *, flag: Flag, to: FlagStatus, reason: str, data: dict[str, Any] | None = None) -> bool:
    """A move the system makes (no user), inside the caller's transaction; False when the table has none
    from the flag's status (a human already decided it)."""
    move = TRANSITIONS.get((flag.status, to))
    if move is None or move.level != Level.SYSTEM:
        return False
    apply_move(db, flag=flag, to=to, actor=None, reason=reason, data=data, commit=False)
    return True
