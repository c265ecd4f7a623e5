"""The period report (季度评析) and the statistics page: one read model, per hospital and for the county.

Checks come from the daily tally (server/reports/rollup.py) plus the unsettled days counted live; flags are
those created in the period, with their review outcome and the money set at confirmation. Everything is
scoped: hospital staff get their own hospital only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_
from sqlmodel import Session, col, func, select

from models.errors import InvalidInput
from models.verdicts import EXCUSED_VERDICTS, FlagKind, Verdict
from server.accounts.tables import Role, UserAccount
from server.admissions.tables import Admission
from server.campaigns import service as campaign_service
from server.campaigns.tables import CheckTask
from server.flags import counts
from server.flags.tables import Flag
from server.hospitals.tables import Hospital
from server.localtime import LOCAL_TZ, day_start
from server.regions.tables import Region, RegionLevel
from server.reports import rollup
from server.reports.tables import CheckTally

MAX_DAYS = 3 * 366
EXCUSED = frozenset(v.value for v in EXCUSED_VERDICTS)
# A bed nobody answered is overdue, not absent; confirmed by a reviewer it is bed-hanging too.
BED_HANGING_KINDS = (FlagKind.ABSENT, FlagKind.OVERDUE, FlagKind.LEAVE_OVERDUE)


@dataclass(frozen=True)
class Period:
    """Local calendar days, both ends included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise InvalidInput("the period ends before it starts")
        if (self.end - self.start).days >= MAX_DAYS:
            raise InvalidInput(f"a period is at most {MAX_DAYS} days")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length just before (a quarter's previous quarter when it is one)."""
        if self.start.day == 1 and _next_month(self.end) == self.end + timedelta(days=1):
            months = (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1
            start = self.start
            for _ in range(months):
                start = _previous_month(start)
            return Period(start, self.start - timedelta(days=1))
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _previous_month(first: date) -> date:
    return date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)


def quarter_of(day: date) -> Period:
    first = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    last = _next_month(date(first.year, first.month + 2, 1)) - timedelta(days=1)
    return Period(first, last)


@dataclass
class Row:
    """One hospital's (or the county's) figures over a period."""

    hospital_id: int | None
    name: str
    checks: int = 0
    verified: int = 0
    excused: int = 0
    verdicts: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    confirmed: int = 0
    confirmed_kinds: dict[str, int] = field(default_factory=dict)
    appealed: int = 0
    upheld: int = 0
    refused_fen: int = 0
    deduction_fen: int = 0
    inpatients: int | None = None
    rank: int | None = None
    previous: Row | None = None

    @property
    def judged(self) -> int:
        return self.checks - self.excused

    @property
    def pass_rate(self) -> float | None:
        return self.verified / self.judged if self.judged else None

    @property
    def bed_hanging_confirmed(self) -> int:
        """Confirmed absences: the bed-hanging cases (挂床) a bureau counts."""
        return sum(self.confirmed_kinds.get(k.value, 0) for k in BED_HANGING_KINDS)

    @property
    def flag_total(self) -> int:
        return sum(self.flags.values())

    def add(self, other: Row) -> None:
        for name in ("checks", "verified", "excused", "confirmed", "appealed", "upheld", "refused_fen",
                     "deduction_fen"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in ((self.verdicts, other.verdicts), (self.flags, other.flags),
                             (self.confirmed_kinds, other.confirmed_kinds)):
            for key, n in theirs.items():
                mine[key] = mine.get(key, 0) + n
        if other.inpatients is not None:
            self.inpatients = (self.inpatients or 0) + other.inpatients


@dataclass
class TrendPoint:
    label: str  # 2026-03, 2026Q1
    period: Period
    row: Row


@dataclass
class Report:
    period: Period
    scope_name: str
    hospitals: list[Row]
    total: Row
    months: list[TrendPoint] = field(default_factory=list)
    quarters: list[TrendPoint] = field(default_factory=list)
    previous_period: Period | None = None
    ranked: bool = True


def scope_hospitals(db: Session, user: UserAccount, *, county: str | None = None,
                    hospital_id: int | None = None) -> tuple[str, dict[int, str]]:
    """The report's name and hospitals (id -> name) within the user's scope."""
    from server.accounts.deps import check_hospital

    stmt = select(Hospital.id, Hospital.name).order_by(col(Hospital.code))
    name = "全部"
    if county:
        region = db.exec(select(Region).where(Region.name == county, Region.level == RegionLevel.COUNTY)).first()
        if region is None:
            raise InvalidInput(f"unknown county {county!r}")
        stmt, name = stmt.where(Hospital.county_id == region.id), region.name
    if hospital_id is not None:
        check_hospital(user, hospital_id, "hospital")
        stmt = stmt.where(Hospital.id == hospital_id)
    if user.role == Role.HOSPITAL_STAFF:
        stmt = stmt.where(Hospital.id == user.hospital_id)
    hospitals = {int(i): n for i, n in db.exec(stmt)}
    if len(hospitals) == 1 and (hospital_id is not None or user.role == Role.HOSPITAL_STAFF):
        name = next(iter(hospitals.values()))
    return name, hospitals


def build(db: Session, user: UserAccount, period: Period, *, county: str | None = None,
          hospital_id: int | None = None, full: bool = True) -> Report:
    """The report over a period; `full` adds inpatients checked, money and the previous period's change."""
    name, hospitals = scope_hospitals(db, user, county=county, hospital_id=hospital_id)
    rows = _rows(db, user, hospitals, period, full=full)
    report = Report(period, name, list(rows.values()), _sum(rows.values(), name), ranked=len(rows) > 1)
    if full:
        report.previous_period = period.previous()
        before = _rows(db, user, hospitals, report.previous_period, full=True)
        for hid, row in rows.items():
            row.previous = before[hid]
        report.total.previous = _sum(before.values(), name)
    _rank(report.hospitals)
    days = _collect(db, user, list(hospitals), period, BY_DAY) if hospitals else {}
    report.months = [TrendPoint(label, p, _sum([r for d, r in days.items() if p.start <= d <= p.end], name))
                     for label, p in _months(period)]
    report.quarters = _quarters(report.months)
    return report


BY_HOSPITAL, BY_DAY = "hospital", "day"


def _rows(db: Session, user: UserAccount, hospitals: dict[int, str], period: Period, *, full: bool) -> dict[int, Row]:
    rows = {hid: Row(hid, name) for hid, name in hospitals.items()}
    if not rows:
        return rows
    for hid, found in _collect(db, user, list(rows), period, BY_HOSPITAL).items():
        found.hospital_id, found.name = hid, rows[hid].name
        rows[hid] = found
    if full:
        for hid, n in _inpatients_checked(db, list(rows), period):
            rows[hid].inpatients = n
        for row in rows.values():
            row.inpatients = row.inpatients or 0
    return rows


def _local_day(db: Session, column: Any) -> Any:
    """The local calendar day of a UTC timestamp column, in SQL. SQLite stores naive UTC text and has no
    time zones: the zone's offset is applied (fixed for China, which keeps no daylight saving time)."""
    if db.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(LOCAL_TZ.key, column))
    offset = LOCAL_TZ.utcoffset(datetime(2000, 1, 1))
    hours = offset.total_seconds() / 3600 if offset else 0
    return func.date(column, f"{hours:+g} hours")


def _key(value: Any) -> Any:
    if isinstance(value, str):
        return date.fromisoformat(value)
    return int(value) if isinstance(value, int) else value


def _collect(db: Session, user: UserAccount, ids: list[int], period: Period, by: str) -> dict[Any, Row]:
    """Checks and flags of the period per hospital (BY_HOSPITAL) or per local day (BY_DAY)."""
    rows: dict[Any, Row] = defaultdict(lambda: Row(None, ""))
    for key, verdict, n in _verdict_counts(db, user, ids, period, by):
        row = rows[_key(key)]
        row.verdicts[verdict] = row.verdicts.get(verdict, 0) + n
        if verdict == Verdict.PENDING.value:
            continue
        row.checks += n
        row.verified += n if verdict == Verdict.VERIFIED.value else 0
        row.excused += n if verdict in EXCUSED else 0
    _add_flags(db, user, rows, ids, period, by)
    return rows


def _verdict_counts(db: Session, user: UserAccount, ids: list[int], period: Period,
                    by: str) -> list[tuple[Any, str, int]]:
    """(hospital or day, verdict, tasks) from the tally for settled days, from the tasks for the others."""
    settled = rollup.rolled_through(db)
    out: list[tuple[Any, str, int]] = []
    live_from = period.start
    if settled is not None and settled >= period.start:
        last = min(settled, period.end)
        key = CheckTally.hospital_id if by == BY_HOSPITAL else CheckTally.day
        out += [(k, str(v), int(n)) for k, v, n in db.exec(
            select(key, CheckTally.verdict, func.sum(CheckTally.tasks))
            .where(col(CheckTally.day) >= period.start, col(CheckTally.day) <= last,
                   col(CheckTally.hospital_id).in_(ids))
            .group_by(key, CheckTally.verdict))]
        live_from = last + timedelta(days=1)
    if live_from <= period.end:
        key = CheckTask.hospital_id if by == BY_HOSPITAL else _local_day(db, CheckTask.issued_at)
        # Settled days hold no unannounced check (a deadline is at most 7 days): only the live part needs the rule.
        live = campaign_service.announced_only(
            select(key, CheckTask.verdict, func.count())
            .where(col(CheckTask.issued_at) >= day_start(live_from),
                   col(CheckTask.issued_at) < day_start(period.end + timedelta(days=1)),
                   col(CheckTask.hospital_id).in_(ids)), user, CheckTask.campaign_id)
        out += [(k, getattr(v, "value", str(v)), int(n)) for k, v, n in db.exec(live.group_by(key, CheckTask.verdict))]
    return out


def _in_period(period: Period) -> Any:
    return and_(col(Flag.created_at) >= day_start(period.start),
                col(Flag.created_at) < day_start(period.end + timedelta(days=1)))


def _add_flags(db: Session, user: UserAccount, rows: dict[Any, Row], ids: list[int], period: Period,
               by: str) -> None:
    """The period's flags per row, counted by the one definition (server/flags/counts.py)."""
    key = Flag.hospital_id if by == BY_HOSPITAL else _local_day(db, Flag.created_at)
    found = counts.tally(db, user, [_in_period(period), col(Flag.hospital_id).in_(ids)], by=key)
    for k, kinds in found.items():
        row = rows[_key(k)]
        for name, count in kinds.items():
            row.flags[name] = row.flags.get(name, 0) + count.raised
            row.confirmed += count.confirmed
            if count.confirmed:
                row.confirmed_kinds[name] = row.confirmed_kinds.get(name, 0) + count.confirmed
            row.appealed += count.appealed
            row.upheld += count.upheld
            row.refused_fen += count.refused_fen
            row.deduction_fen += count.deduction_fen


def _inpatients_checked(db: Session, ids: list[int], period: Period) -> list[tuple[int, int]]:
    """Admissions with at least one check task issued in the period, per hospital."""
    start, end = day_start(period.start), day_start(period.end + timedelta(days=1))
    checked = exists().where(CheckTask.admission_id == Admission.id, col(CheckTask.issued_at) >= start,
                             col(CheckTask.issued_at) < end)
    stmt = (select(Admission.hospital_id, func.count())
            .where(col(Admission.hospital_id).in_(ids), col(Admission.admitted_at) < end,
                   or_(col(Admission.discharged_at).is_(None), col(Admission.discharged_at) >= start), checked)
            .group_by(Admission.hospital_id))
    return [(int(h), int(n)) for h, n in db.exec(stmt)]


def _sum(rows: Any, name: str) -> Row:
    total = Row(None, name)
    for row in rows:
        total.add(row)
    return total


def _rank(rows: list[Row]) -> None:
    """Best first: highest pass rate, then fewest confirmed violations, then least refused."""
    ordered = sorted(rows, key=lambda r: (-(r.pass_rate if r.pass_rate is not None else -1), r.confirmed,
                                          r.refused_fen, r.name))
    for i, row in enumerate(ordered, start=1):
        row.rank = i


def _months(period: Period) -> list[tuple[str, Period]]:
    out, first = [], date(period.start.year, period.start.month, 1)
    while first <= period.end:
        last = _next_month(first) - timedelta(days=1)
        out.append((f"{first:%Y-%m}", Period(max(first, period.start), min(last, period.end))))
        first = _next_month(first)
    return out


def _quarters(months: list[TrendPoint]) -> list[TrendPoint]:
    grouped: dict[str, list[TrendPoint]] = defaultdict(list)
    for point in months:
        grouped[f"{point.period.start.year}Q{(point.period.start.month - 1) // 3 + 1}"].append(point)
    quarters = []
    for label, points in grouped.items():
        total = _sum([p.row for p in points], points[0].row.name)
        quarters.append(TrendPoint(label, Period(points[0].period.start, points[-1].period.end), total))
    return quarters


def ranked(report: Report) -> list[Row]:
    return sorted(report.hospitals, key=lambda r: r.rank or 0)


def flag_kinds(report: Report) -> list[str]:
    """Kinds that occur in the report, in the vocabulary's order."""
    seen = set(report.total.flags)
    return [k.value for k in FlagKind if k.value in seen]

