"""CSV files as hospital systems export them: UTF-8 with or without BOM, or GBK/GB18030, even both in one file.

Many Chinese HIS exports are GBK (GB18030 is its superset), and a file pieced together from two systems can
be UTF-8 but for a few GBK rows. Decoding such a file whole as GB18030 garbles every UTF-8 name, so a file
that is not clean UTF-8 is decoded line by line: a line that is valid UTF-8 is UTF-8 (GBK text is almost never
valid UTF-8, while UTF-8 text often is "valid" GB18030 and comes out garbled), any other line GB18030, and a
line that is neither is rejected with its line number. The report's encoding then says which were met
("utf-8", "gb18030", or "utf-8+gb18030"). A named encoding (`--encoding`) is used for every line, strictly.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable
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


def _strict(raw: bytes, encoding: str) -> str | None:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        return None


def _lines(data: bytes, decode: Callable[[bytes], tuple[str | None, str]]) -> tuple[str, list[RowRejected], set[str]]:
    lines, rejected, used = [], [], set()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        text, encoding = decode(raw)
        if text is None:
            lines.append("")  # a blank line keeps every later line's number; csv skips it
            rejected.append(RowRejected(number, UNDECODABLE, f"line {number} is not valid {encoding} text"))
            continue
        lines.append(text)
        if not raw.isascii():
            used.add(encoding)
    return "\n".join(lines), rejected, used


def _either(raw: bytes) -> tuple[str | None, str]:
    """UTF-8 when the line is valid UTF-8, else GB18030 (None: neither)."""
    text = _strict(raw, "utf-8")
    if text is not None:
        return text, "utf-8"
    text = _strict(raw, "gb18030")
    return text, "gb18030" if text is not None else "utf-8 or gb18030"


def decode_text(data: bytes, encoding: str | None = None) -> tuple[str, list[RowRejected], str]:
    """The text with undecodable lines blanked (line numbers kept), their rejects, and the encoding(s) used."""
    if data.startswith(UTF8_BOM) and (encoding is None or known_encoding(encoding) == "utf-8"):
        data = data[len(UTF8_BOM):]
    if encoding:
        named = known_encoding(encoding)
        text = _strict(data, named)
        if text is not None:
            return text, [], named
        text, rejected, _ = _lines(data, lambda raw: (_strict(raw, named), named))
        return text, rejected, named
    text = _strict(data, "utf-8")
    if text is not None:
        return text, [], "utf-8"
    text, rejected, used = _lines(data, _either)
    return text, rejected, "+".join(sorted(used, key=("utf-8", "gb18030").index)) or "gb18030"


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
