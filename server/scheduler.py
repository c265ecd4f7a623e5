"""Background jobs of a server process (APScheduler): deadline sweep, evidence check, daily roll-calls.

Jobs take no ORM objects; each opens its own database scope and logs and carries on when one fails.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import Engine

from models.settings import EngineSettings
from server.db import WriteGate
from server.settings import ServerSettings

log = logging.getLogger("bedcheck.scheduler")


def sweep_job(engine: Engine, gate: WriteGate) -> None:
    from server.checks.service import sweep_deadlines
    from server.db import db_scope

    try:
        with gate, db_scope(engine) as db:
            closed = sweep_deadlines(db)
        if closed:
            log.info("deadline sweep closed %d tasks", closed)
    except Exception:  # a failed sweep must not stop the next one
        log.exception("deadline sweep failed")


def evidence_job(engine: Engine, gate: WriteGate, checker: object) -> None:
    from server.db import db_scope
    from server.evidence.service import EvidenceChecker

    assert isinstance(checker, EvidenceChecker)
    try:
        with db_scope(engine) as db:
            checked = checker.run_until_done(db, gate)
        if checked:
            log.info("evidence check: %d results", checked)
    except Exception:  # the next run retries what this one left unchecked
        log.exception("evidence check failed")


def checkpoint_job(engine: Engine, settings: ServerSettings) -> None:
    """A signed checkpoint of the audit chain's head, outside the database (server/audit/checkpoints.py)."""
    from server.audit.checkpoints import write_checkpoint
    from server.db import db_scope

    try:
        with db_scope(engine) as db:
            write_checkpoint(db, settings.resolved_checkpoint_path, settings.resolved_checkpoint_mirror)
    except Exception:  # the next run writes it
        log.exception("audit checkpoint failed")


def roll_call_job(engine: Engine, gate: WriteGate, deadline_s: int) -> None:
    """One roll-call campaign per hospital, so a failing hospital does not stop the others."""
    from sqlmodel import select

    from server.campaigns.service import create_campaign
    from server.campaigns.tables import CampaignKind
    from server.db import db_scope
    from server.hospitals.tables import Hospital

    with db_scope(engine) as db:
        hospital_ids = [h for h in db.exec(select(Hospital.id)) if h is not None]
    for hospital_id in hospital_ids:
        try:
            with gate, db_scope(engine) as db:
                create_campaign(db, hospital_ids=[hospital_id], deadline_s=deadline_s, actor="scheduler",
                                kind=CampaignKind.ROLL_CALL)
        except Exception:
            log.exception("roll-call failed for hospital %s", hospital_id)


def acquire_leadership(settings: ServerSettings) -> int | None:
    """Only one process per machine and database runs the jobs (several uvicorn workers share them).

    An flock held until `release_leadership` (or the process's death: the kernel drops it). Returns the
    lock's file descriptor, or None when another process leads. Past one machine, run the scheduler in one
    process only (BEDCHECK_RUN_SCHEDULER=false elsewhere).
    """
    import fcntl
    import hashlib
    import os

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(settings.resolved_database_url.encode()).hexdigest()[:12]
    fd = os.open(settings.data_dir / f"scheduler-{tag}.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def release_leadership(fd: int) -> None:
    import os

    os.close(fd)  # closing the descriptor drops the flock


def start_scheduler(engine: Engine, settings: ServerSettings, engine_settings: EngineSettings,
                    gate: WriteGate) -> tuple[BackgroundScheduler, int] | None:
    """Starts the jobs if this process leads; returns the scheduler and the leadership lock to release."""
    from server.evidence.service import EvidenceChecker

    lock = acquire_leadership(settings)
    if lock is None:
        log.info("another process runs the scheduler")
        return None
    scheduler = BackgroundScheduler(timezone=settings.timezone)
    scheduler.add_job(sweep_job, "interval", seconds=settings.sweep_interval_s, args=[engine, gate],
                      max_instances=1, coalesce=True, id="deadline-sweep")
    if settings.evidence_in_server:  # else evidence worker processes take the queue (`bedcheck evidence work`)
        scheduler.add_job(evidence_job, "interval", seconds=settings.evidence_interval_s,
                          args=[engine, gate, EvidenceChecker(settings, engine_settings)],
                          max_instances=1, coalesce=True, id="evidence-check")
    scheduler.add_job(checkpoint_job, "interval", seconds=settings.audit_checkpoint_interval_s,
                      args=[engine, settings], max_instances=1, coalesce=True, id="audit-checkpoint")
    from server.reports.jobs import tally_job

    scheduler.add_job(tally_job, "cron", hour=0, minute=30, args=[engine, gate], id="check-tally", coalesce=True)
    for at in filter(None, (t.strip() for t in settings.roll_call_times.split(","))):
        hour, minute = (int(x) for x in at.split(":"))
        scheduler.add_job(roll_call_job, "cron", hour=hour, minute=minute,
                          args=[engine, gate, settings.default_deadline_s], id=f"roll-call-{at}", coalesce=True)
    # A sweep still running when the next is due is normal under load, not worth a warning each time.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
    scheduler.start()
    return scheduler, lock
