"""The one way the project writes Excel workbooks: every text cell is stored as text.

openpyxl stores a string that starts with "=" as a formula, so a hospital or patient name such as
`=HYPERLINK("http://x","查看")` would run in the reader's Excel (formula injection). `append_row` writes each
string as a string cell, whatever its first character, and drops the control characters the xlsx format
cannot hold (openpyxl refuses them with an exception: one such name would fail the whole export).
Every workbook the server writes (exports, reports) is made by `new_workbook` and filled by `append_row`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.worksheet.worksheet import Worksheet


def new_workbook() -> Workbook:
    """An empty workbook (no default sheet): add sheets with `add_sheet`."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    return workbook


def add_sheet(workbook: Workbook, title: str) -> Worksheet:
    """A sheet titled as given, cut to Excel's 31 characters and without the characters titles may not hold."""
    clean = "".join("_" if c in '[]:*?/\\' else c for c in ILLEGAL_CHARACTERS_RE.sub("", title))
    return workbook.create_sheet(clean[:31] or "Sheet")


def text(value: str) -> str:
    """The text as a cell may hold it (xlsx forbids most control characters)."""
    return ILLEGAL_CHARACTERS_RE.sub("", value)


def append_row(sheet: Worksheet, values: Iterable[Any]) -> list[Cell]:
    """Appends one row; strings stay strings (never formulas). Returns the row's cells."""
    values = [text(v) if isinstance(v, str) else v for v in values]
    sheet.append(values)
    cells = list(sheet[sheet.max_row]) if values else []
    for cell, value in zip(cells, values, strict=False):
        if isinstance(value, str):
            cell.data_type = "s"  # openpyxl guessed "f" for a leading "="
    return cells


def to_bytes(workbook: Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
