"""Money as people read it: yuan with two decimals; stored as integer fen (分), never as a float."""

from __future__ import annotations


def format_yuan(fen: int | None) -> str:
    """¥1,234.50: the one money format of pages, exports and the command line."""
    if fen is None:
        return "—"
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"
