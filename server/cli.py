"""`bedcheck`: the server and administration command. Each domain owns its sub-commands; this file wires them."""

from __future__ import annotations

import typer

app = typer.Typer(help="bedcheck: inpatient bed checks for medical-insurance supervision.", no_args_is_help=True)

# Sub-command modules register themselves here, one line each (imports stay light: heavy work is lazy).
from server.faces_cli import app as faces_app  # noqa: E402

app.add_typer(faces_app, name="faces", help="Face engine: check, compare, evaluate and calibrate.")
