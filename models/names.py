"""The one rule for a name a person typed or a system exported (patient, staff, approver, user).

A name is shown to reviewers, printed in reports and written to spreadsheets, so it must read as what it is:

- refused (`name_refused`): control characters (C0/C1: a NUL, a bell, an escape), bidirectional controls
  (U+202A-U+202E, U+2066-U+2069, U+200E/F, U+061C: "U+202E" shows "张三\u202eLQ" as a different name), and a
  name of nothing visible (only zero-width or blank characters);
- cleaned, and said so: zero-width and other invisible format characters (U+200B, U+200C, U+200D, U+2060,
  U+FEFF, soft hyphen...) are removed; any run of blanks (ideographic space U+3000, no-break space, tabs)
  becomes one ordinary space, and the ends are trimmed. NFC first, so a composed and a decomposed é are one.

`clean_name` returns the cleaned name and what it removed or replaced, so every entry (roster import,
registry feed, enrollment, leave approvers, user names) can store the clean name and show what was done.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from models.errors import NameRefused

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters and symbols that draw nothing (Hangul fillers, the blank Braille pattern): invisible like format characters.
INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
_BLANKS = re.compile(r"\s+")


@dataclass(frozen=True)
class CleanedName:
    value: str
    removed: tuple[str, ...] = ()  # "U+200B ZERO WIDTH SPACE", one per kind of character removed or replaced

    @property
    def changed(self) -> bool:
        return bool(self.removed)


def _describe(char: str) -> str:
    return f"U+{ord(char):04X} {unicodedata.name(char, 'UNNAMED')}"


def clean_name(raw: str, *, field: str = "name", strict: bool = False) -> CleanedName:
    """The name as it may be stored, or NameRefused (details: field, rule, code_points).

    Args:
        raw: the name as it arrived.
        field: the field's name, for the message.
        strict: refuse instead of cleaning (user names, typed exactly at every sign-in).
    Returns:
        The cleaned name and, per kind of character removed or replaced, its code point and name.
    """
    text = unicodedata.normalize("NFC", raw)
    bidi = sorted({c for c in text if c in BIDI_CONTROLS})
    if bidi:
        raise NameRefused(f"{field} contains a text-direction control character", field=field,
                          rule="bidi_control", code_points=[_describe(c) for c in bidi])
    control = sorted({c for c in text if unicodedata.category(c) == "Cc" and not c.isspace()})
    if control:
        raise NameRefused(f"{field} contains a control character", field=field, rule="control_character",
                          code_points=[_describe(c) for c in control])
    invisible = sorted({c for c in text if unicodedata.category(c) == "Cf" or c in INVISIBLE_LETTERS})
    kept = "".join(c for c in text if c not in invisible)
    odd_blanks = sorted({c for c in kept.strip() if c.isspace() and c != " "})
    value = _BLANKS.sub(" ", kept).strip()
    if not value:
        raise NameRefused(f"{field} has no visible character", field=field, rule="invisible_only",
                          code_points=[_describe(c) for c in sorted(set(text))][:10])
    removed = tuple(_describe(c) for c in [*invisible, *odd_blanks])
    if strict and (removed or value != raw):
        raise NameRefused(f"{field} contains invisible or unusual blank characters", field=field,
                          rule="invisible_character", code_points=list(removed))
    return CleanedName(value, removed)
