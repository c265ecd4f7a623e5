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
