"""Console use cases that change state: review decisions and hospital appeals, each audited."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from models.errors import InvalidInput
from server.accounts.tables import UserAccount
from server.audit import service as audit
from server.flags import appeals, workflow
from server.flags.tables import Appeal, Flag, FlagStatus

REVIEW_REASONS = tuple(r.value for r in workflow.ReviewReason)
MAX_BULK = 500
# The appeal's own rules and limits live in server/flags/appeals.py (the JSON API files appeals too).
Upload = appeals.Upload
MAX_ATTACHMENTS, MAX_ATTACHMENT_BYTES = appeals.MAX_ATTACHMENTS, appeals.MAX_ATTACHMENT_BYTES
MAX_STATEMENT_CHARS = appeals.MAX_STATEMENT_CHARS


def reasons_for(current: FlagStatus, to: FlagStatus) -> tuple[str, ...]:
    """The review reasons that fit moving a flag from `current` to `to` (the workflow's table decides)."""
    return tuple(r.value for r in workflow.reasons_for(current, to))


def form_error(message: str, key: str, field: str) -> InvalidInput:
    """An input error the console shows beside `field`, worded by the text `key` in the page's language."""
    return InvalidInput(message, text_key=key, field=field)


def review_flag(db: Session, *, flag: Flag, actor: UserAccount, to: workflow.Decision | None, reason_code: str,
                comment: str) -> Flag:
    """First or final review: a decision, a reason fitting it (plus a comment, required for 'other')."""
    comment = comment.strip()
    if to is None:
        raise form_error("choose a decision", "err_choose_decision", "to")
    if to == FlagStatus.APPEALED:
        raise InvalidInput("an appeal is filed with a statement, not as a review")
    # The reason's rules (from the list, fitting the decision, a comment for 'other') are the workflow's.
    return workflow.review(db, flag=flag, to=to, actor=actor, reason=reason_code, comment=comment)


@dataclass
class BulkOutcome:
    done: list[int]
    skipped: list[int]  # not in scope, or the decision does not apply to the flag's status


def bulk_review(db: Session, *, flags: list[Flag], actor: UserAccount, to: workflow.Decision | None,
                reason_code: str, comment: str) -> BulkOutcome:
    """One decision for many flags (a ward's device outage): each flag through the same review, each audited."""
    if not flags:
        raise form_error("select at least one flag", "err_select_flags", "ids")
    if len(flags) > MAX_BULK:
        raise form_error(f"at most {MAX_BULK} flags at once", "err_too_many", "ids")
    if to is None:
        raise form_error("choose a decision", "err_choose_decision", "to")
    if reason_code == "other" and not comment.strip():
        raise form_error("a comment is required when the reason is 'other'", "err_comment_required", "comment")
    to = workflow.as_decision(to, reason_code)
    outcome = BulkOutcome([], [])
    for flag in flags:
        allowed = workflow.available_moves(db, flag=flag, user=actor)
        fitting = [r.value for r in workflow.decision_reasons(flag, to)]
        if workflow.target_of(to) not in allowed or reason_code not in fitting:
            outcome.skipped.append(flag.id or 0)
            continue
        review_flag(db, flag=flag, actor=actor, to=to, reason_code=reason_code, comment=comment)
        outcome.done.append(flag.id or 0)
    if outcome.done:
        audit.record(db, actor=f"user:{actor.id}", action="flag.bulk_review", object_type="flag",
                     object_id=outcome.done[0], data={"to": to.value, "flags": outcome.done,
                                                      "reason": reason_code})
        db.commit()
    return outcome


def file_appeal(db: Session, *, flag: Flag, actor: UserAccount, statement: str, uploads: list[Upload]) -> Appeal:
    """A hospital's appeal (server/flags/appeals.py: the same record as the JSON API's)."""
    return appeals.file_appeal(db, flag=flag, actor=actor, statement=statement, uploads=uploads)
