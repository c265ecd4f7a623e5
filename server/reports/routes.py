"""Report API: the period report as JSON (the console page, the Excel file and the CLI show the same)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from server.accounts.deps import CurrentUser
from server.db import Db
from server.reports import service
from server.reports.jobs import refresh_if_stale

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


class RowRead(BaseModel):
    hospital_id: int | None
    name: str
    inpatients: int | None
    checks: int
    verified: int
    excused: int
    pass_rate: float | None
    verdicts: dict[str, int]
    flags: dict[str, int]
    confirmed: int
    appealed: int
    upheld: int
    refused_fen: int
    deduction_fen: int
    rank: int | None
    previous: RowRead | None = None


class TrendRead(BaseModel):
    label: str
    start: date
    end: date
    row: RowRead


class ReportRead(BaseModel):
    start: date
    end: date
    scope: str
    total: RowRead
    hospitals: list[RowRead]
    months: list[TrendRead]
    quarters: list[TrendRead]


def row_read(row: service.Row) -> RowRead:
    return RowRead(hospital_id=row.hospital_id, name=row.name, inpatients=row.inpatients, checks=row.checks,
                   verified=row.verified, excused=row.excused, pass_rate=row.pass_rate, verdicts=row.verdicts,
                   flags=row.flags, confirmed=row.confirmed, appealed=row.appealed, upheld=row.upheld,
                   refused_fen=row.refused_fen, deduction_fen=row.deduction_fen, rank=row.rank,
                   previous=row_read(row.previous) if row.previous else None)


def report_read(report: service.Report) -> ReportRead:
    trend = [[TrendRead(label=p.label, start=p.period.start, end=p.period.end, row=row_read(p.row)) for p in points]
             for points in (report.months, report.quarters)]
    return ReportRead(start=report.period.start, end=report.period.end, scope=report.scope_name,
                      total=row_read(report.total), hospitals=[row_read(r) for r in service.ranked(report)],
                      months=trend[0], quarters=trend[1])


@router.get("", response_model=ReportRead)
def period_report(request: Request, user: CurrentUser, db: Db, start: Annotated[date, Query(alias="from")],
                  end: Annotated[date, Query(alias="to")], county: str | None = None,
                  hospital_id: int | None = None) -> ReportRead:
    refresh_if_stale(db)
    report = service.build(db, user, service.Period(start, end), county=county, hospital_id=hospital_id)
    return report_read(report)
