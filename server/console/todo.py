"""The hospital's to-do list: its flags still open to an appeal, the deadline and the days left, soonest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from server.accounts.tables import UserAccount
from server.console import timeline
from server.db import utcnow
from server.flags import service as flag_service
from server.flags.tables import Appeal, Flag
from server.hospitals.tables import Hospital
from server.persons.tables import InsuredPerson

MAX_ITEMS = 500


@dataclass
class TodoItem:
    flag: Flag
    hospital: str
    patient: str
    insurance_number: str
    deadline: datetime
    days_left: int


def todo(db: Session, user: UserAccount) -> list[TodoItem]:
    """Flags of the user's scope that can still be appealed and have no appeal yet, soonest deadline first."""
    appealed = select(Appeal.flag_id)
    stmt = (select(Flag, Hospital.name, InsuredPerson.name, InsuredPerson.insurance_number)
            .outerjoin(Hospital, col(Hospital.id) == Flag.hospital_id)
            .outerjoin(InsuredPerson, col(InsuredPerson.id) == Flag.insured_person_id)
            .where(col(Flag.status).in_(list(timeline.APPEALABLE)), col(Flag.hospital_id).is_not(None),
                   col(Flag.id).not_in(appealed))
            .order_by(col(Flag.created_at)).limit(MAX_ITEMS))
    now = utcnow()
    items = []
    for flag, hospital, patient, number in db.exec(flag_service.scoped(stmt, user)):
        deadline = timeline.appeal_deadline(db, flag)
        if deadline is None or deadline < now:
            continue
        items.append(TodoItem(flag, hospital or "", patient or "", number or "", deadline,
                              timeline.days_left(deadline, now) or 0))
    return sorted(items, key=lambda i: i.deadline)
