"""`bedcheck`: the server and administration command. Each domain owns its sub-commands; this file wires them."""

from __future__ import annotations

import click
import typer
from typer.core import TyperGroup

from enrollment.cli import app as enroll_app
from models.errors import BedcheckError
from server import admin_cli
from server.audit.cli import app as audit_app
from server.evidence.cli import app as evidence_app
from server.faces_cli import app as faces_app
from server.reports import cli as reports_cli


class InputErrorsExit2(TyperGroup):
    """A user's bad input (a file's content, an unknown name) is a message and exit status 2, as click's own
    usage errors are, never a traceback; whatever else fails still shows its traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except BedcheckError as e:
            click.echo(f"error: {e.code.value}: {e.message}", err=True)
            raise SystemExit(2) from e
        except (OSError, UnicodeDecodeError) as e:
            click.echo(f"error: {e}", err=True)
            raise SystemExit(2) from e


app = typer.Typer(help="bedcheck: inpatient bed checks for medical-insurance supervision.", no_args_is_help=True,
                  cls=InputErrorsExit2)

app.add_typer(faces_app, name="faces", help="Face engine: check, compare, evaluate and calibrate.")
app.add_typer(audit_app, name="audit", help="Audit trail.")
app.add_typer(evidence_app, name="evidence", help="Evidence checks on uploaded results.")
app.add_typer(enroll_app, name="enroll", help="Enroll insured persons' faces (bulk) and keep the 1:N face index.")
app.add_typer(admin_cli.users, name="users")
app.add_typer(admin_cli.roster, name="roster")
app.add_typer(admin_cli.insurance_registry, name="registry")
app.add_typer(admin_cli.beds, name="beds")
app.add_typer(admin_cli.devices, name="devices")
app.command("db-upgrade")(admin_cli.db_upgrade)
app.command("serve")(admin_cli.serve)
app.command("hospitals-import")(admin_cli.import_hospitals)
app.command("spot-check")(admin_cli.spot_check)
app.command("report")(reports_cli.report)
app.add_typer(reports_cli.agreement, name="agreement")


@app.command()
def demo(
    no_serve: bool = typer.Option(False, "--no-serve", help="Exit after the summary instead of serving"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (progress goes to stderr)"),
    hospitals: int = typer.Option(46, min=1),
    inpatients: int = typer.Option(5000, min=1),
    deadline_s: int = typer.Option(120, min=5, help="Deadline, seconds (done sooner once every bed answered)"),
    seed: int = typer.Option(7),
    port: int = typer.Option(8000, min=1, max=65535, help="Port of the console while serving"),
    offline_s: float = typer.Option(5.0, min=0.0, help="How long the county's offline wards stay offline, "
                                    "seconds (past the deadline: their beds end overdue)"),
    review: bool = typer.Option(True, "--review/--no-review", help="Let simulated reviewers decide every flag "
                                "after the check (--no-review leaves them open for people in the console)"),
) -> None:
    """Simulate a county and run the one-command spot check end to end."""
    from server.demo import run_demo

    run_demo(serve=not no_serve, as_json=as_json, hospitals=hospitals, inpatients=inpatients,
             deadline_s=deadline_s, seed=seed, port=port, offline_s=offline_s, review=review)


if __name__ == "__main__":
    app()
