"""`bedcheck faces ...` (placeholder until the face engine lands)."""

import typer

app = typer.Typer(no_args_is_help=True)
