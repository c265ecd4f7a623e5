"""Console pages of the reports: statistics (trend and ranking), the period report, its print page and Excel."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from models.errors import InvalidInput
from server.accounts.deps import ANY_USER, CurrentUser
from server.audit import service as audit
from server.console.i18n import translator
from server.console.web import PREFIX, PageRoute, language, render
from server.db import Db
from server.localtime import LOCAL_TZ
from server.reports import service
from server.reports.chart import trend_svg
from server.reports.jobs import refresh_if_stale
from server.reports.xlsx import report_xlsx

router = APIRouter(prefix=PREFIX, route_class=PageRoute, include_in_schema=False, dependencies=[Depends(ANY_USER)])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _day(value: str, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError as e:
        raise InvalidInput(f"not a date (YYYY-MM-DD): {value[:20]!r}") from e


def _today() -> date:
    return datetime.now(LOCAL_TZ).date()


def period_of(start: str, end: str, *, default: service.Period) -> service.Period:
    return service.Period(_day(start, default.start), _day(end, default.end))


def _hospital(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise InvalidInput(f"not a number: {value[:20]!r}")
    return int(value)


def _presets(today: date) -> list[tuple[str, service.Period]]:
    quarter = service.quarter_of(today)
    return [("this_quarter", quarter), ("last_quarter", quarter.previous()),
            ("this_year", service.Period(date(today.year, 1, 1), date(today.year, 12, 31))),
            ("last_year", service.Period(date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)))]


def _context(request: Request, report: service.Report, query: dict[str, str], today: date) -> dict[str, Any]:
    t = translator(language(request))
    return {"report": report, "rows": service.ranked(report), "kinds": service.flag_kinds(report),
            "chart": trend_svg(report.months, t), "query": urlencode(query),
            "filters": query, "presets": [(key, urlencode({**query, "from": p.start, "to": p.end}))
                                          for key, p in _presets(today)],
            "generated_at": datetime.now(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")}


def _build(request: Request, user: Any, db: Any, start: str, end: str, county: str, hospital_id: str,
           *, full: bool, default: service.Period) -> tuple[service.Report, dict[str, str]]:
    period = period_of(start, end, default=default)
    refresh_if_stale(db)
    report = service.build(db, user, period, county=county or None, hospital_id=_hospital(hospital_id), full=full)
    query = {"from": str(period.start), "to": str(period.end), **({"county": county} if county else {}),
             **({"hospital_id": hospital_id} if hospital_id else {})}
    return report, query


@router.get("/statistics", response_class=HTMLResponse)
def statistics(request: Request, user: CurrentUser, db: Db, county: str = "", hospital_id: str = "") -> Response:
    today = _today()
    report, query = _build(request, user, db, request.query_params.get("from", ""),
                           request.query_params.get("to", ""), county, hospital_id, full=False,
                           default=service.Period(date(today.year, 1, 1), today))
    return render(request, "statistics.html", _context(request, report, query, today), user=user)


@router.get("/reports", response_class=HTMLResponse)
def period_report(request: Request, user: CurrentUser, db: Db, county: str = "", hospital_id: str = "") -> Response:
    today = _today()
    report, query = _build(request, user, db, request.query_params.get("from", ""),
                           request.query_params.get("to", ""), county, hospital_id, full=True,
                           default=service.quarter_of(today))
    return render(request, "report.html", _context(request, report, query, today), user=user)


@router.get("/reports/print", response_class=HTMLResponse)
def printable_report(request: Request, user: CurrentUser, db: Db, county: str = "",
                     hospital_id: str = "") -> Response:
    today = _today()
    report, query = _build(request, user, db, request.query_params.get("from", ""),
                           request.query_params.get("to", ""), county, hospital_id, full=True,
                           default=service.quarter_of(today))
    return render(request, "report_print.html", _context(request, report, query, today), user=user)


@router.get("/reports/report.xlsx")
def report_excel(request: Request, user: CurrentUser, db: Db, county: str = "", hospital_id: str = "") -> Response:
    return _excel(request, user, db, county, hospital_id, full=True)


@router.get("/statistics/statistics.xlsx")
def statistics_excel(request: Request, user: CurrentUser, db: Db, county: str = "",
                     hospital_id: str = "") -> Response:
    return _excel(request, user, db, county, hospital_id, full=False)


def _excel(request: Request, user: Any, db: Any, county: str, hospital_id: str, *, full: bool) -> Response:
    today = _today()
    default = service.quarter_of(today) if full else service.Period(date(today.year, 1, 1), today)
    report, query = _build(request, user, db, request.query_params.get("from", ""),
                           request.query_params.get("to", ""), county, hospital_id, full=full, default=default)
    body = report_xlsx(report, translator(language(request)), full=full)
    audit.record(db, actor=f"user:{user.id}", action="export.report", object_type="report", object_id="*",
                 data={**query, "full": full})
    db.commit()
    name = f"{'report' if full else 'statistics'}-{report.period.start}-{report.period.end}.xlsx"
    disposition = f"attachment; filename*=UTF-8''{quote(name)}"
    return Response(body, media_type=XLSX, headers={"cache-control": "no-store", "content-disposition": disposition})
