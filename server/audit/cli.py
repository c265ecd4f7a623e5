"""`bedcheck audit verify`."""

from __future__ import annotations

import typer

from server.settings import ServerSettings

app = typer.Typer(no_args_is_help=True)


@app.command()
def verify() -> None:
    """Check the audit chain; exit 1 naming the first broken record."""
    from server.audit.service import verify as walk
    from server.db import db_scope, make_engine

    engine = make_engine(ServerSettings().resolved_database_url)
    try:
        with db_scope(engine) as db:
            count, problems = walk(db)
    finally:
        engine.dispose()
    for problem in problems:
        typer.echo(f"BROKEN seq={problem.seq} id={problem.record_id}: {problem.problem}")
    if problems:
        raise typer.Exit(1)
    typer.echo(f"audit chain intact: {count} records")
