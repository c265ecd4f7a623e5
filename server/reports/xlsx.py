"""The report as an Excel workbook: hospitals (ranked), monthly and quarterly trend; Chinese headers, yuan cells."""

from __future__ import annotations

from collections.abc import Callable

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from server.reports.service import Report, Row, TrendPoint, flag_kinds, ranked
from server.spreadsheet import add_sheet, append_row, new_workbook, to_bytes

YUAN = '"¥"#,##0.00'
PERCENT = "0.00%"


def _header(t: Callable[[str], str], kinds: list[str], full: bool) -> list[str]:
    head = [t("rank"), t("hospital")]
    if full:
        head.append(t("inpatients_checked"))
    head += [t("checks_done"), t("verified"), t("pass_rate"), *[t(k) for k in kinds], t("flags_total"),
             t("confirmed"), t("appealed_count"), t("upheld_count")]
    if full:
        head += [t("refused_funds"), t("deductions"), t("pass_rate_change"), t("confirmed_change")]
    return head


def _values(row: Row, kinds: list[str], full: bool) -> list[object]:
    values: list[object] = [row.rank or "", row.name]
    if full:
        values.append(row.inpatients or 0)
    values += [row.checks, row.verified, row.pass_rate, *[row.flags.get(k, 0) for k in kinds], row.flag_total,
               row.confirmed, row.appealed, row.upheld]
    if full:
        before = row.previous
        rate_change = (row.pass_rate - before.pass_rate if before and row.pass_rate is not None
                       and before.pass_rate is not None else None)
        values += [row.refused_fen / 100, row.deduction_fen / 100, rate_change,
                   row.confirmed - before.confirmed if before else None]
    return values


def _sheet(workbook: Workbook, title: str, header: list[str], rows: list[list[object]], money: set[int],
           percent: set[int]) -> None:
    sheet = add_sheet(workbook, title)
    for cell in append_row(sheet, header):
        cell.font = Font(bold=True)
    for values in rows:
        append_row(sheet, values)
    for index, name in enumerate(header, start=1):
        width = max([len(str(name)) * 2] + [len(str(v)) + 2 for r in rows for v in r[index - 1:index]])
        sheet.column_dimensions[get_column_letter(index)].width = min(max(width, 8), 40)
        for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
            cell.number_format = YUAN if index - 1 in money else PERCENT if index - 1 in percent else cell.number_format
    sheet.freeze_panes = "C2"


def report_xlsx(report: Report, t: Callable[[str], str], *, full: bool) -> bytes:
    kinds = flag_kinds(report)
    header = _header(t, kinds, full)
    money = {header.index(t("refused_funds")), header.index(t("deductions"))} if full else set()
    percent = {header.index(t("pass_rate"))} | ({header.index(t("pass_rate_change"))} if full else set())
    workbook = new_workbook()
    rows = [_values(r, kinds, full) for r in ranked(report)] + [_values(report.total, kinds, full)]
    rows[-1][1] = f"{t('county_total')}（{report.scope_name}）"
    _sheet(workbook, t("report_by_hospital"), header, rows, money, percent)
    trend_header = [t("period"), t("checks_done"), t("verified"), t("pass_rate"), *[t(k) for k in kinds],
                    t("flags_total"), t("confirmed"), t("appealed_count"), t("upheld_count"), t("refused_funds"),
                    t("deductions")]
    n = len(trend_header)
    for title, points in ((t("by_month"), report.months), (t("by_quarter"), report.quarters)):
        _sheet(workbook, title, trend_header, [_trend(p, kinds) for p in points], {n - 2, n - 1}, {3})
    return to_bytes(workbook)


def _trend(point: TrendPoint, kinds: list[str]) -> list[object]:
    row = point.row
    return [point.label, row.checks, row.verified, row.pass_rate, *[row.flags.get(k, 0) for k in kinds],
            row.flag_total, row.confirmed, row.appealed, row.upheld, row.refused_fen / 100, row.deduction_fen / 100]
