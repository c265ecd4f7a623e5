"""Console use cases that change state: review decisions and hospital appeals, each audited."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlmodel import Session

from models.errors import InvalidInput, NotFound, PayloadTooLarge
from server.accounts.tables import UserAccount
from server.audit import service as audit
from server.console import timeline
from server.console.tables import Appeal, AppealAttachment
from server.db import utcnow
from server.flags import service as flag_service
from server.flags.tables import Flag, FlagStatus

REVIEW_REASONS = ("evidence_clear", "face_mismatch", "bed_empty", "false_match", "valid_exemption", "device_fault",
                  "appeal_accepted", "appeal_rejected", "other")
# Which reasons fit which decision: a dismissal is never "evidence is clear", an appeal reason only answers
# an appeal. The form offers these and the server refuses any other pair.
_CONFIRMING = ("evidence_clear", "face_mismatch", "bed_empty")
_DISMISSING = ("false_match", "valid_exemption", "device_fault")
REASONS_FOR: dict[FlagStatus, tuple[str, ...]] = {
    FlagStatus.FIRST_REVIEWED: (*_CONFIRMING, "other"),
    FlagStatus.CONFIRMED: (*_CONFIRMING, "other"),
    FlagStatus.DISMISSED: (*_DISMISSING, "other"),
}
REASONS_FOR_APPEAL: dict[FlagStatus, tuple[str, ...]] = {
    FlagStatus.CONFIRMED: ("appeal_rejected", *_CONFIRMING, "other"),
    FlagStatus.DISMISSED: ("appeal_accepted", *_DISMISSING, "other"),
}
MAX_BULK = 500
MAX_ATTACHMENTS = 5
MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024
MAX_STATEMENT_CHARS = 4000
# Types are decided by the bytes, never by the name or the browser's claim.
MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"%PDF-", "application/pdf"))


def reasons_for(current: FlagStatus, to: FlagStatus) -> tuple[str, ...]:
    """The review reasons that fit moving a flag from `current` to `to`."""
    table = REASONS_FOR_APPEAL if current == FlagStatus.APPEALED else REASONS_FOR
    return table.get(to, ())


def form_error(message: str, key: str, field: str) -> InvalidInput:
    """An input error the console shows beside `field`, worded by the text `key` in the page's language."""
    return InvalidInput(message, text_key=key, field=field)


def review_flag(db: Session, *, flag: Flag, actor: UserAccount, to: FlagStatus | None, reason_code: str,
                comment: str) -> Flag:
    """First or final review: a decision, a reason fitting it (plus a comment, required for 'other')."""
    comment = comment.strip()
    if to is None:
        raise form_error("choose a decision", "err_choose_decision", "to")
    if to == FlagStatus.APPEALED:
        raise InvalidInput("an appeal is filed with a statement, not as a review")
    if reason_code not in REVIEW_REASONS:
        raise form_error(f"unknown review reason {reason_code!r}", "err_choose_reason", "reason")
    if reason_code not in reasons_for(flag.status, to):
        raise form_error(f"reason {reason_code!r} does not fit this decision", "err_reason_mismatch", "reason")
    if reason_code == "other" and not comment:
        raise form_error("a comment is required when the reason is 'other'", "err_comment_required", "comment")
    reason = f"{reason_code}: {comment}" if comment else reason_code
    return flag_service.transition(db, flag=flag, to=to, actor=actor, reason=reason[:500])


@dataclass
class BulkOutcome:
    done: list[int]
    skipped: list[int]  # not in scope, or the decision does not apply to the flag's status


def bulk_review(db: Session, *, flags: list[Flag], actor: UserAccount, to: FlagStatus | None, reason_code: str,
                comment: str) -> BulkOutcome:
    """One decision for many flags (a ward's device outage): each flag through the same review, each audited."""
    if not flags:
        raise form_error("select at least one flag", "err_select_flags", "ids")
    if len(flags) > MAX_BULK:
        raise form_error(f"at most {MAX_BULK} flags at once", "err_too_many", "ids")
    if to is None:
        raise form_error("choose a decision", "err_choose_decision", "to")
    if reason_code == "other" and not comment.strip():
        raise form_error("a comment is required when the reason is 'other'", "err_comment_required", "comment")
    outcome = BulkOutcome([], [])
    for flag in flags:
        allowed = flag_service.ALLOWED.get((flag.status, to))
        if allowed is None or actor.role not in allowed or reason_code not in reasons_for(flag.status, to):
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


@dataclass(frozen=True)
class Upload:
    filename: str
    content: bytes


def sniff_type(content: bytes) -> str | None:
    return next((kind for magic, kind in MAGIC if content.startswith(magic)), None)


def safe_filename(name: str) -> str:
    """Base name only, word characters, dots and dashes, at most 100 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    cleaned = re.sub(r"[^\w.\-]+", "_", base).strip("._")[:100]
    return cleaned or "attachment"


def file_appeal(db: Session, *, flag: Flag, actor: UserAccount, statement: str, uploads: list[Upload]) -> Appeal:
    """A hospital's appeal: statement and attachments stored, flag moved to appealed, all in one commit."""
    statement = statement.strip()
    if not statement:
        raise form_error("the appeal needs a statement", "err_statement_required", "statement")
    if len(statement) > MAX_STATEMENT_CHARS:
        raise InvalidInput(f"the statement is longer than {MAX_STATEMENT_CHARS} characters")
    uploads = [u for u in uploads if u.content or u.filename]
    if len(uploads) > MAX_ATTACHMENTS:
        raise InvalidInput(f"at most {MAX_ATTACHMENTS} attachments")
    checked = [_checked(u) for u in uploads]
    if flag.hospital_id is None or actor.hospital_id != flag.hospital_id:
        raise NotFound("flag not found")
    deadline = timeline.appeal_deadline(db, flag)
    if deadline is not None and deadline < utcnow():
        raise form_error("the appeal deadline has passed", "err_appeal_deadline_passed", "statement")
    try:
        appeal = Appeal(flag_id=flag.id or 0, hospital_id=flag.hospital_id, statement=statement,
                        created_by=actor.username)
        db.add(appeal)
        db.flush()
        for attachment in checked:
            attachment.appeal_id = appeal.id or 0
            db.add(attachment)
        audit.record(db, actor=f"user:{actor.id}", action="appeal.filed", object_type="flag",
                     object_id=flag.id or 0, data={"appeal_id": appeal.id,
                                                   "attachments": [a.sha256 for a in checked]})
        flag_service.transition(db, flag=flag, to=FlagStatus.APPEALED, actor=actor, reason=f"appeal #{appeal.id}")
    except BaseException:
        db.rollback()
        raise
    return appeal


def _checked(upload: Upload) -> AppealAttachment:
    if not upload.content:
        raise InvalidInput(f"attachment {safe_filename(upload.filename)!r} is empty")
    if len(upload.content) > MAX_ATTACHMENT_BYTES:
        raise PayloadTooLarge(f"attachment {safe_filename(upload.filename)!r} is larger than "
                              f"{MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB", max_bytes=MAX_ATTACHMENT_BYTES)
    content_type = sniff_type(upload.content)
    if content_type is None:
        raise InvalidInput(f"attachment {safe_filename(upload.filename)!r} is not a JPEG, PNG or PDF file")
    return AppealAttachment(appeal_id=0, filename=safe_filename(upload.filename), content_type=content_type,
                            size_bytes=len(upload.content), sha256=hashlib.sha256(upload.content).hexdigest(),
                            content=upload.content)
