"""One definition of each flag count, used by every page and export that shows one: the dashboard, the flag
queue and its CSV/Excel, the statistics page, the period report, its print page and its Excel.

What counts:
- a flag *stands* unless the system superseded it (a late result contradicted it: the bed was answered after
  all); a superseded `overdue` is never counted as 超时未答, open or raised, anywhere;
- *open* flags await someone: first review, final review, or the decision on an appeal;
- *appealed* flags were appealed at least once; *upheld* ones had an appeal decided for the hospital.
Every count goes through `flag_service.scoped`: a hospital user counts its own hospital's flags and none of a
spot check still unannounced.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists
from sqlmodel import Session, col, func, select

from server.accounts.tables import UserAccount
from server.flags import service as flag_service
from server.flags.tables import Flag, FlagStatus, Review

OPEN_STATUSES = (FlagStatus.OPEN, FlagStatus.FIRST_REVIEWED, FlagStatus.APPEALED)
NOT_COUNTED = (FlagStatus.SUPERSEDED,)


def stands() -> Any:
    """SQL condition: the flag is counted (every status but superseded)."""
    return col(Flag.status).not_in(list(NOT_COUNTED))


def is_open() -> Any:
    """SQL condition: the flag awaits a reviewer's or an appeal's decision."""
    return col(Flag.status).in_(list(OPEN_STATUSES))


def was_appealed() -> Any:
    return exists().where(Review.flag_id == Flag.id, Review.to_status == FlagStatus.APPEALED)


def appeal_upheld() -> Any:
    return exists().where(Review.flag_id == Flag.id, Review.from_status == FlagStatus.APPEALED,
                          Review.to_status == FlagStatus.DISMISSED)


@dataclass
class KindCount:
    """One kind's figures. `raised` counts standing flags whatever their review status."""

    raised: int = 0
    open: int = 0
    confirmed: int = 0
    dismissed: int = 0
    appealed: int = 0
    upheld: int = 0
    refused_fen: int = 0
    deduction_fen: int = 0


Tally = dict[Any, dict[str, KindCount]]


def tally(db: Session, user: UserAccount, conditions: Iterable[Any] = (), *, by: Any = None) -> Tally:
    """Flag counts per key (`by`, a column or SQL expression; None: one key, None) and kind, within the user's
    scope and the given conditions; kinds are their stored values."""
    keys = [by] if by is not None else []
    where = [stands(), *conditions]
    out: Tally = defaultdict(lambda: defaultdict(KindCount))
    stmt = (select(*keys, Flag.kind, Flag.status, func.count(), func.sum(Flag.refused_fen),
                   func.sum(Flag.deduction_fen)).where(*where).group_by(*keys, Flag.kind, Flag.status))
    for row in db.exec(flag_service.scoped(stmt, user)):
        k, (kind, status, n, refused, deduction) = _split(row, keys)
        count = out[k][getattr(kind, "value", str(kind))]
        status = FlagStatus(status)
        count.raised += int(n)
        count.open += int(n) if status in OPEN_STATUSES else 0
        count.confirmed += int(n) if status == FlagStatus.CONFIRMED else 0
        count.dismissed += int(n) if status == FlagStatus.DISMISSED else 0
        count.refused_fen += int(refused or 0)
        count.deduction_fen += int(deduction or 0)
    for attribute, condition in (("appealed", was_appealed()), ("upheld", appeal_upheld())):
        stmt = select(*keys, Flag.kind, func.count()).where(*where, condition).group_by(*keys, Flag.kind)
        for row in db.exec(flag_service.scoped(stmt, user)):
            k, (kind, n) = _split(row, keys)
            setattr(out[k][getattr(kind, "value", str(kind))], attribute, int(n))
    return out


def by_kind(db: Session, user: UserAccount, conditions: Iterable[Any] = ()) -> dict[str, KindCount]:
    """Flag counts per kind within the user's scope and the conditions (e.g. one campaign)."""
    return dict(tally(db, user, conditions).get(None, {}))


def _split(row: Any, keys: list[Any]) -> tuple[Any, tuple[Any, ...]]:
    values = tuple(row)
    return (values[0], values[1:]) if keys else (None, values)
