"""`bedcheck audit verify` and `bedcheck audit checkpoint`."""

from __future__ import annotations

import typer

from server.settings import ServerSettings

app = typer.Typer(no_args_is_help=True)
MAX_LISTED = 20


@app.command()
def verify() -> None:
    """Check the audit chain and its signed checkpoints (file and mirror); exit 1 naming what is broken, edited,
    missing or stale."""
    from server.audit.checkpoints import load_checkpoints
    from server.audit.service import use_key
    from server.audit.service import verify as walk
    from server.db import db_scope, make_engine

    settings = ServerSettings()
    engine = make_engine(settings.resolved_database_url)
    use_key(engine, settings.audit_secret)
    path, mirror = settings.resolved_checkpoint_path, settings.resolved_checkpoint_mirror
    try:
        with db_scope(engine) as db:
            loaded = load_checkpoints(db, path, mirror, max_age_s=settings.audit_checkpoint_max_age_s)
            count, problems = walk(db, loaded.checkpoints)
    finally:
        engine.dispose()
    for problem in problems[:MAX_LISTED]:
        typer.echo(f"BROKEN seq={problem.seq} id={problem.record_id}: {problem.problem}")
    if len(problems) > MAX_LISTED:
        typer.echo(f"... and {len(problems) - MAX_LISTED} more")
    for file_problem in loaded.problems:
        typer.echo(f"BROKEN {file_problem}")
    if problems or loaded.problems:
        typer.echo("审计链校验未通过 / audit verification FAILED")
        raise typer.Exit(1)
    places = f"{path}" + (f" and {mirror}" if mirror else "")
    typer.echo(f"审计链完整 / audit chain intact: {count} records, {len(loaded.checkpoints)} checkpoints ({places})")


@app.command()
def checkpoint() -> None:
    """Append a signed checkpoint of the chain's head to the checkpoint file (the server does so periodically)."""
    from server.audit.checkpoints import write_checkpoint
    from server.audit.service import use_key
    from server.db import db_scope, make_engine

    settings = ServerSettings()
    engine = make_engine(settings.resolved_database_url)
    use_key(engine, settings.audit_secret)
    try:
        with db_scope(engine) as db:
            written = write_checkpoint(db, settings.resolved_checkpoint_path, settings.resolved_checkpoint_mirror)
    finally:
        engine.dispose()
    typer.echo(f"checkpoint at seq {written.seq}" if written else "the newest checkpoint is current")
