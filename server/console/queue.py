"""The flag queue (审核列表): filters, search by patient, sort, paging and the default view of what needs doing.

The default view shows actionable flags only (awaiting first review, final review or an appeal decision),
fraud kinds first: one silent ward's hundred overdue flags must not bury the impersonations.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from sqlalchemy import case, or_
from sqlmodel import Session, col, func, select

from models.verdicts import FlagKind
from server.accounts.deps import check_hospital, scope
from server.accounts.tables import UserAccount
from server.admissions.tables import Admission
from server.console import inbox
from server.flags import counts
from server.flags import service as flag_service
from server.flags.tables import Flag, FlagStatus
from server.hospitals.tables import Bed, Hospital, Ward
from server.persons.tables import InsuredPerson

ACTIONABLE = counts.OPEN_STATUSES  # one definition of "open" (server/flags/counts.py)
ACTIONABLE_KEY = "actionable"  # the pseudo-status of the default view
PAGE_SIZES = (20, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
# Fraud first, then what a reviewer can settle quickly, device trouble last.
KIND_PRIORITY = [FlagKind.IMPERSONATED, FlagKind.SPOOF, FlagKind.LIVENESS_MISMATCH, FlagKind.TAMPERED_EVIDENCE,
                 FlagKind.REPLAYED_PHOTO, FlagKind.REPLAYED_EVIDENCE, FlagKind.CROSS_HOSPITAL_FACE,
                 FlagKind.PLACE_MISMATCH,
                 FlagKind.DUPLICATE_ADMISSION, FlagKind.DUPLICATE_IDENTITY, FlagKind.FACE_REPLACED, FlagKind.ABSENT,
                 FlagKind.UNRECOGNISED, FlagKind.LATE, FlagKind.OVERDUE, FlagKind.DEVICE_OFFLINE]
SORTS = ("priority", "created", "-created", "kind", "status", "hospital", "patient", "bed", "distance",
         "-distance")
MAX_ORDERED_IDS = 5000  # "submit and next" looks this far along the queue


@dataclass(frozen=True)
class FlagFilter:
    campaign_id: int | None = None
    hospital_id: int | None = None
    kind: FlagKind | None = None
    # A FlagStatus value, ACTIONABLE_KEY, inbox.MINE_KEY (optionally `mine:<status>`), or None for every status.
    status: str | None = None
    ward_id: int | None = None
    q: str | None = None  # patient name, insurance number, or a flag number (#123)
    sort: str = "priority"
    per_page: int = DEFAULT_PAGE_SIZE

    def query(self) -> dict[str, str]:
        """The filter as query parameters (defaults left out), for links that keep it."""
        defaults = FlagFilter()
        return {f.name: str(getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) is not None and getattr(self, f.name) != getattr(defaults, f.name)}

    def with_(self, **changes: Any) -> FlagFilter:
        return replace(self, **changes)


def default_filter() -> FlagFilter:
    """What the reader can act on now (server/console/inbox.py)."""
    return FlagFilter(status=inbox.MINE_KEY)


def _joined(stmt: Any) -> Any:
    return (stmt.outerjoin(Hospital, col(Hospital.id) == Flag.hospital_id)
            .outerjoin(InsuredPerson, col(InsuredPerson.id) == Flag.insured_person_id)
            .outerjoin(Admission, col(Admission.id) == Flag.admission_id)
            .outerjoin(Ward, col(Ward.id) == Admission.ward_id)
            .outerjoin(Bed, col(Bed.id) == Admission.bed_id))


def flag_number(q: str | None) -> int | None:
    """`#3162` asks for one flag by its number."""
    text = (q or "").strip()
    if text.startswith("#") and text[1:].isdigit() and len(text) <= 10:
        return int(text[1:])
    return None


def _search(stmt: Any, q: str) -> Any:
    text = q.strip()
    number = flag_number(text)
    if number is not None:
        return stmt.where(col(Flag.id) == number)
    # Part of an insurance number (its tail, its middle) finds the person; digits alone can be a flag's number.
    conditions = [col(InsuredPerson.insurance_number).contains(text), col(InsuredPerson.name).contains(text)]
    if text.isdigit() and len(text) <= 9:
        conditions.append(col(Flag.id) == int(text))
    return stmt.where(or_(*conditions))


def flag_query(user: UserAccount, filters: FlagFilter, *, db: Session, columns: Any = None) -> Any:
    """SELECT (Flag or `columns`) within scope and filters, joined to patient, ward and bed; another hospital
    asked for by staff is 404. A flag number searched for (#123) is found whatever the status filter says."""
    if filters.hospital_id is not None:
        check_hospital(user, filters.hospital_id, "hospital")
    stmt = _joined(select(*(columns or [Flag])).select_from(Flag))
    stmt = flag_service.scoped(stmt, user)  # hospital scope and unannounced checks: the flags service's rule
    for column, value in ((Flag.campaign_id, filters.campaign_id), (Flag.hospital_id, filters.hospital_id),
                          (Flag.kind, filters.kind), (Admission.ward_id, filters.ward_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if filters.q and filters.q.strip():
        stmt = _search(stmt, filters.q)
    if flag_number(filters.q) is None:
        stmt = _by_status(db, user, stmt, filters.status)
    return stmt


def _by_status(db: Session, user: UserAccount, stmt: Any, status: str | None) -> Any:
    if status == ACTIONABLE_KEY:
        return stmt.where(counts.is_open())
    if status and status.startswith(inbox.MINE_KEY):
        stmt = stmt.where(inbox.condition(db, user))
        _, _, only = status.partition(":")
        return stmt.where(Flag.status == FlagStatus(only)) if only else stmt
    if status:
        return stmt.where(Flag.status == FlagStatus(status))
    # Every status that counts: a superseded flag is listed only when asked for by its status.
    return stmt.where(counts.stands())


def _order(sort: str) -> list[Any]:
    distance = Flag.details["distance"].as_float()
    # Compared through the column (enum names are what the database stores), not as bare strings.
    priority = case(*[(col(Flag.kind) == k, n) for n, k in enumerate(KIND_PRIORITY)], else_=len(KIND_PRIORITY))
    by = {
        "priority": [priority, col(Flag.created_at), col(Flag.id)],
        "created": [col(Flag.created_at), col(Flag.id)], "-created": [col(Flag.created_at).desc(), col(Flag.id).desc()],
        "kind": [col(Flag.kind), col(Flag.id)], "status": [col(Flag.status), col(Flag.id)],
        "hospital": [col(Hospital.name), col(Flag.id)], "patient": [col(InsuredPerson.name), col(Flag.id)],
        "bed": [col(Hospital.name), col(Ward.code), col(Bed.label), col(Flag.id)],
        "distance": [distance.is_(None), distance, col(Flag.id)],
        "-distance": [distance.is_(None), distance.desc(), col(Flag.id)],
    }
    return by.get(sort, by["priority"])


@dataclass
class QueueRow:
    flag: Flag
    hospital: str
    patient: str
    insurance_number: str
    ward: str
    bed: str


@dataclass
class FlagPage:
    total: int
    page: int
    pages: int
    rows: list[QueueRow]


def flag_page(db: Session, user: UserAccount, filters: FlagFilter, *, page: int = 1) -> FlagPage:
    """One page of the queue in the chosen order, with hospital, patient, ward and bed."""
    count_stmt = flag_query(user, filters, db=db, columns=[col(Flag.id)])
    total = int(db.exec(select(func.count()).select_from(count_stmt.subquery())).one())
    per_page = filters.per_page if filters.per_page in PAGE_SIZES else DEFAULT_PAGE_SIZE
    pages = max(1, -(-total // per_page))
    page = min(max(page, 1), pages)
    stmt = flag_query(user, filters, db=db, columns=[
        Flag, Hospital.name, InsuredPerson.name, InsuredPerson.insurance_number, Ward.code, Ward.name, Bed.label])
    rows = db.exec(stmt.order_by(*_order(filters.sort)).offset((page - 1) * per_page).limit(per_page))
    return FlagPage(total, page, pages, [
        QueueRow(f, h or "", p or "", n or "", (wn or wc or ""), b or "") for f, h, p, n, wc, wn, b in rows])


def ordered_ids(db: Session, user: UserAccount, filters: FlagFilter) -> list[int]:
    """The queue's flag ids in its order (for "submit and next")."""
    stmt = flag_query(user, filters, db=db, columns=[col(Flag.id)])
    stmt = stmt.order_by(*_order(filters.sort)).limit(MAX_ORDERED_IDS)
    return [int(i) for i in db.exec(stmt)]


def next_after(ids: list[int], current: int) -> int | None:
    """The flag after `current` in a queue taken before it was reviewed."""
    if current not in ids:
        return ids[0] if ids else None
    at = ids.index(current)
    return ids[at + 1] if at + 1 < len(ids) else None


def ward_names(db: Session, user: UserAccount) -> list[tuple[int, str, str]]:
    """Wards the user may see: id, hospital name, ward code/name; by hospital then ward."""
    stmt = scope(select(Ward.id, Hospital.name, Ward.code, Ward.name)
                 .join(Hospital, col(Hospital.id) == Ward.hospital_id), user, Ward.hospital_id)
    return [(int(i), h, n or c) for i, h, c, n in db.exec(stmt.order_by(col(Hospital.name), col(Ward.code)))]
