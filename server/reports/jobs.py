"""Keeping the daily tally current: from the scheduler once a day, and before a report if a day was missed."""

from __future__ import annotations

import logging

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from server.db import WriteGate, db_scope, utcnow
from server.reports import rollup

log = logging.getLogger("bedcheck.reports")


def refresh_if_stale(db: Session) -> None:
    """Rolls up settled days before a report reads the tally (a cheap check when nothing is due)."""
    if not rollup.is_stale(db, utcnow()):
        return
    try:
        rollup.refresh(db, now=utcnow())
    except IntegrityError:  # another process rolled the same days up first
        db.rollback()


def tally_job(engine: Engine, gate: WriteGate) -> None:
    try:
        with gate, db_scope(engine) as db:
            days = rollup.refresh(db, now=utcnow())
        if days:
            log.info("check tally: %d days rolled up", days)
    except Exception:  # the next run, or the next report, catches up
        log.exception("check tally failed")
