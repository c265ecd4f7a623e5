"""CSV files as hospital systems export them: UTF-8 with or without BOM, or GBK/GB18030, one bad row at most.

Many Chinese HIS exports are GBK (GB18030 is its superset). The encoding is given (`--encoding`) or
detected: a BOM means UTF-8; a file that decodes as UTF-8 is UTF-8; otherwise the encoding under which
more rows decode (UTF-8 or GB18030). Rows are decoded one by one, so a row that is not valid text in the
file's encoding is rejected with its line number while every other row is read.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field

from models.errors import InvalidInput

UTF8_BOM = b"\xef\xbb\xbf"
UNDECODABLE = "undecodable_row"


@dataclass
class RowRejected:
    line: int
    code: str
    message: str


@dataclass
class CsvRows:
    rows: list[tuple[int, dict[str, str]]]
    rejected: list[RowRejected] = field(default_factory=list)
    encoding: str = "utf-8"


def known_encoding(name: str) -> str:
    """The codec's canonical name, or a clear error for a name Python does not know."""
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError) as e:  # ValueError: a NUL in the name (found by fuzzing: a 500)
        raise InvalidInput(f"unknown encoding {name!r} (try utf-8 or gb18030)", field="encoding") from e


def detect_encoding(data: bytes) -> str:
    """utf-8 (BOM or clean), else whichever of utf-8 and gb18030 decodes more lines."""
    if data.startswith(UTF8_BOM):
        return "utf-8"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    lines = [line for line in data.splitlines() if not line.isascii()]
    return "utf-8" if _decodable(lines, "utf-8") > _decodable(lines, "gb18030") else "gb18030"


def _decodable(lines: list[bytes], encoding: str) -> int:
    count = 0
    for line in lines:
        try:
            line.decode(encoding)
            count += 1
        except UnicodeDecodeError:
            pass
    return count


def decode_text(data: bytes, encoding: str | None = None) -> tuple[str, list[RowRejected], str]:
    """The text with undecodable lines blanked (line numbers kept), their rejects, and the encoding used."""
    encoding = known_encoding(encoding) if encoding else detect_encoding(data)
    if data.startswith(UTF8_BOM) and encoding in ("utf-8", "utf_8"):
        data = data[len(UTF8_BOM):]
    try:
        return data.decode(encoding), [], encoding
    except UnicodeDecodeError:
        pass
    lines, rejected = [], []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.decode(encoding))
        except UnicodeDecodeError:
            lines.append("")  # a blank line keeps every later line's number; csv skips it
            rejected.append(RowRejected(number, UNDECODABLE, f"line {number} is not valid {encoding} text"))
    return "\n".join(lines), rejected, encoding


def read_csv(data: bytes, *, required: tuple[str, ...], encoding: str | None = None, what: str = "CSV") -> CsvRows:
    """(line number, row) pairs of a CSV with a header line; a missing column refuses the whole file."""
    text, rejected, used = decode_text(data, encoding)
    if rejected and rejected[0].line == 1:
        raise InvalidInput(f"the {what}'s header line is not valid {used} text (give its encoding)", encoding=used)
    # newline="" as the csv module asks: a bare carriage return inside a field is then data, not an error.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = [name.strip() for name in reader.fieldnames or []]
        reader.fieldnames = header
        missing = [c for c in required if c not in header]
        if missing:
            raise InvalidInput(f"the {what} lacks columns: {', '.join(missing)}", missing=missing)
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as e:  # found by fuzzing: malformed CSV must be a clear 422, not a 500
        raise InvalidInput(f"the {what} is malformed at line {reader.line_num}: {e}") from e
    return CsvRows(rows, rejected, used)
