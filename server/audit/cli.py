"""`bedcheck audit verify` and `bedcheck audit checkpoint`."""

from __future__ import annotations

import typer

from server.settings import ServerSettings

app = typer.Typer(no_args_is_help=True)
MAX_LISTED = 20


@app.command()
def verify() -> None:
    """Check the audit chain and its signed checkpoints; exit 1 naming what is broken, edited or missing."""
    from server.audit.checkpoints import read_checkpoints
    from server.audit.service import key_for, use_key
    from server.audit.service import verify as walk
    from server.db import db_scope, make_engine

    settings = ServerSettings()
    engine = make_engine(settings.resolved_database_url)
    use_key(engine, settings.audit_secret)
    path = settings.resolved_checkpoint_path
    try:
        with db_scope(engine) as db:
            checkpoints, file_problems = read_checkpoints(path, key_for(db))
            count, problems = walk(db, checkpoints)
    finally:
        engine.dispose()
    for problem in problems[:MAX_LISTED]:
        typer.echo(f"BROKEN seq={problem.seq} id={problem.record_id}: {problem.problem}")
    if len(problems) > MAX_LISTED:
        typer.echo(f"... and {len(problems) - MAX_LISTED} more")
    for problem in file_problems:
        typer.echo(f"BROKEN {path}: {problem}")
    if problems or file_problems:
        raise typer.Exit(1)
    if not checkpoints:
        typer.echo(f"warning: no checkpoints in {path}: a truncated tail cannot be detected")
    typer.echo(f"audit chain intact: {count} records, {len(checkpoints)} checkpoints")


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
            written = write_checkpoint(db, settings.resolved_checkpoint_path)
    finally:
        engine.dispose()
    typer.echo(f"checkpoint at seq {written.seq}" if written else "the newest checkpoint is current")
