"""Daily check counts per hospital and verdict, kept in `check_tally` once a day can no longer change.

A county's year is millions of check tasks (two roll-calls a day for every inpatient); the report and the
statistics page sum a few thousand tally rows instead. A task's verdict can still change for a while after it
is issued (deadline up to 7 days, late answers welcome), so only days older than SETTLE_DAYS are rolled up;
younger days are counted from the tasks themselves.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import insert
from sqlmodel import Session, col, func, select

from server.campaigns.tables import CheckTask
from server.localtime import day_start, local_date
from server.reports.tables import CheckTally, TallyState

SETTLE_DAYS = 8


def settled_through(now: datetime) -> date:
    return local_date(now) - timedelta(days=SETTLE_DAYS)


def rolled_through(db: Session) -> date | None:
    state = db.get(TallyState, 1)
    return state.rolled_through if state else None


def is_stale(db: Session, now: datetime) -> bool:
    done = rolled_through(db)
    return done is None or done < settled_through(now)


def refresh(db: Session, *, now: datetime) -> int:
    """Rolls up every settled day not yet in the tally; returns the number of days added; commits."""
    target = settled_through(now)
    done = rolled_through(db)
    if done is None:
        first = db.exec(select(func.min(CheckTask.issued_at))).one()
        done = (local_date(first) if first else target) - timedelta(days=1)
    day, added = done + timedelta(days=1), 0
    while day <= target:
        rows = db.exec(select(CheckTask.hospital_id, CheckTask.verdict, func.count())
                       .where(col(CheckTask.issued_at) >= day_start(day),
                              col(CheckTask.issued_at) < day_start(day + timedelta(days=1)))
                       .group_by(CheckTask.hospital_id, CheckTask.verdict))
        values = [{"day": day, "hospital_id": int(h), "verdict": getattr(v, "value", v), "tasks": int(n)}
                  for h, v, n in rows]
        if values:
            db.execute(insert(CheckTally), values)
        day, added = day + timedelta(days=1), added + 1
    if added:
        state = db.get(TallyState, 1) or TallyState(id=1, rolled_through=target)
        state.rolled_through = target
        db.add(state)
    db.commit()
    return added
