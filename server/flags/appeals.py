"""A hospital's appeal against a flag: statement and attachments checked by content, one Appeal record.

The console form and the JSON API both call `file_appeal`; the flag moves through the workflow's table.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlmodel import Session

from models.errors import InvalidInput, NotFound, PayloadTooLarge
from server.accounts.tables import UserAccount
from server.audit import service as audit
from server.db import utcnow
from server.flags import workflow
from server.flags.tables import Appeal, AppealAttachment, Flag, FlagStatus

MAX_ATTACHMENTS = 5
MAX_ATTACHMENT_BYTES = 2 * 1024 * 1024
MAX_STATEMENT_CHARS = 4000
# Types are decided by the bytes, never by the name or the browser's claim.
MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"%PDF-", "application/pdf"))


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
    from server.console import timeline  # the appeal window; timeline imports nothing of this module

    statement = statement.strip()
    if not statement:
        raise InvalidInput("the appeal needs a statement", text_key="err_statement_required", field="statement")
    if len(statement) > MAX_STATEMENT_CHARS:
        raise InvalidInput(f"the statement is longer than {MAX_STATEMENT_CHARS} characters")
    uploads = [u for u in uploads if u.content or u.filename]
    if len(uploads) > MAX_ATTACHMENTS:
        raise InvalidInput(f"at most {MAX_ATTACHMENTS} attachments", text_key="err_too_many_attachments",
                           field="attachments")
    checked = [_checked(u) for u in uploads]
    if flag.hospital_id is None or actor.hospital_id != flag.hospital_id:
        raise NotFound("flag not found")
    # Refused before anything is stored: an appeal only where the workflow allows one (not before first review).
    workflow.check_move(db, flag=flag, to=FlagStatus.APPEALED, actor=actor, level=workflow.Level.APPEAL)
    deadline = timeline.appeal_deadline(db, flag)
    if deadline is not None and deadline < utcnow():
        raise InvalidInput("the appeal deadline has passed", text_key="err_appeal_deadline_passed",
                           field="statement")
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
        workflow.apply_move(db, flag=flag, to=FlagStatus.APPEALED, actor=actor, reason=f"appeal #{appeal.id}")
    except BaseException:
        db.rollback()
        raise
    return appeal


def _checked(upload: Upload) -> AppealAttachment:
    # Each refusal names the file (as the reader chose it) and the field, so the form can say which one.
    name = (upload.filename or "")[:200]
    if not upload.content:
        raise InvalidInput(f"attachment {safe_filename(upload.filename)!r} is empty", text_key="err_attachment_empty",
                           field="attachments", file=name)
    if len(upload.content) > MAX_ATTACHMENT_BYTES:
        raise PayloadTooLarge(f"attachment {safe_filename(upload.filename)!r} is larger than "
                              f"{MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB", max_bytes=MAX_ATTACHMENT_BYTES,
                              text_key="err_attachment_too_large", field="attachments", file=name)
    content_type = sniff_type(upload.content)
    if content_type is None:
        raise InvalidInput(f"attachment {safe_filename(upload.filename)!r} is not a JPEG, PNG or PDF file",
                           text_key="err_attachment_type", field="attachments", file=name)
    return AppealAttachment(appeal_id=0, filename=safe_filename(upload.filename), content_type=content_type,
                            size_bytes=len(upload.content), sha256=hashlib.sha256(upload.content).hexdigest(),
                            content=upload.content)
