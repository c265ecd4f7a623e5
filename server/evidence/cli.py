"""`bedcheck evidence check`: run the evidence check now (the server's scheduler runs it every few seconds)."""

from __future__ import annotations

import typer

from server.settings import ServerSettings

app = typer.Typer(no_args_is_help=True)


@app.command()
def check() -> None:
    """Re-check every result not yet checked: tampering, replayed photos, cross-hospital faces, naming."""
    from sqlmodel import func, select

    from models.settings import EngineSettings
    from server.db import WriteGate, db_scope, make_engine
    from server.evidence.service import EvidenceChecker
    from server.flags.tables import Flag

    settings = ServerSettings()
    engine = make_engine(settings.resolved_database_url)
    try:
        with db_scope(engine) as db:
            before = db.exec(select(func.count()).select_from(Flag)).one()
            checked = EvidenceChecker(settings, EngineSettings.load()).run_until_done(db, WriteGate(engine))
            raised = db.exec(select(func.count()).select_from(Flag)).one() - before
    finally:
        engine.dispose()
    typer.echo(f"evidence check: {checked} results checked, {raised} flags raised")


@app.command()
def work(
    processes: int = typer.Option(0, min=0, help="Worker processes (0: one per core)"),
    batch: int = typer.Option(20, min=1, max=10_000, help="Results a worker claims at a time"),
    idle_s: float = typer.Option(1.0, min=0.05, help="How long an idle worker waits before looking again"),
) -> None:
    """Evidence worker processes on this machine, fed from the database's evidence queue, until Ctrl-C or
    SIGTERM. Run it on as many machines as needed against the same database (docs/scale-out.md)."""
    from server.evidence.workers import default_processes, run_pool

    count = processes or default_processes()
    typer.echo(f"evidence workers: {count} processes, {batch} results a claim (Ctrl-C to stop)", err=True)
    run_pool(processes=count, batch=batch, idle_s=idle_s)


@app.command()
def progress(campaign: int | None = typer.Option(None, help="A campaign's id (default: every result)")) -> None:
    """How many results the evidence check has judged, and how many workers hold right now."""
    from server.db import db_scope, make_engine
    from server.evidence.queue import progress as queue_progress

    settings = ServerSettings()
    engine = make_engine(settings.resolved_database_url)
    try:
        with db_scope(engine) as db:
            p = queue_progress(db, campaign_id=campaign)
    finally:
        engine.dispose()
    typer.echo(f"evidence check: {p.checked:,} / {p.total:,} ({p.in_hand:,} being checked)")
