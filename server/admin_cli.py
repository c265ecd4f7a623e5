"""Administration commands: database, users, hospitals, roster, devices, spot checks, server."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from server.settings import ServerSettings

console = Console(stderr=True)
out = Console()


def _engine():  # type: ignore[no-untyped-def]
    from server.audit.service import use_key
    from server.db import make_engine, upgrade

    settings = ServerSettings()
    engine = make_engine(settings.resolved_database_url)
    use_key(engine, settings.audit_secret)
    upgrade(engine)
    return engine


def parse_duration(text: str) -> int:
    """'20m', '90s', '1h', '1h30m' or plain seconds -> seconds."""
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?", text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise typer.BadParameter(f"not a duration: {text!r} (use e.g. 20m, 90s, 1h)")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def db_upgrade() -> None:
    """Create or migrate the database schema to the newest revision."""
    _engine()
    out.print(f"database ready: {ServerSettings().resolved_database_url.split('@')[-1]}")


def serve(host: str = "127.0.0.1", port: int = 8000,
          workers: Annotated[int, typer.Option(min=1, help="Worker processes (one runs the scheduler)")] = 1) -> None:
    """Run the server (API, device endpoints, console, scheduler)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from server.http import uvicorn_config

    settings = ServerSettings()  # refuses a placeholder secret outside demo/test before anything starts
    console.print(settings.startup_message())
    # A busy worker is not a dead one: uvicorn's 5 s health check would restart it mid spot check.
    config = uvicorn_config("server.app:create_app_from_env", header_timeout_s=settings.header_timeout_s,
                            factory=True, host=host, port=port, workers=workers, timeout_worker_healthcheck=120)
    server = uvicorn.Server(config)
    if workers == 1:
        server.run()
        return
    # What uvicorn.run does for workers, with our config object (it carries the header timeout).
    sock = config.bind_socket()
    Multiprocess(config, sockets=[sock]).run()


users = typer.Typer(no_args_is_help=True, help="User accounts.")


@users.command("create")
def create_user(username: str, role: str, password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
                hospital: Annotated[str | None, typer.Option(help="Hospital code (hospital staff)")] = None) -> None:
    """Create a user with a role: admin, supervisor, reviewer or hospital_staff."""
    from sqlmodel import select

    from models.errors import Conflict, NameRefused, WeakPassword
    from models.names import clean_name
    from server.accounts.passwords import check_password_policy
    from server.accounts.service import create_user as create
    from server.accounts.tables import Role
    from server.db import db_scope
    from server.hospitals.tables import Hospital

    if role not in {r.value for r in Role}:
        raise typer.BadParameter(f"unknown role {role!r} ({', '.join(r.value for r in Role)})", param_hint="ROLE")
    try:  # before the database: a weak password or a bad name is a usage error (exit 2), not a traceback
        clean_name(username, field="username", strict=True)
    except NameRefused as e:
        raise typer.BadParameter(f"{e.message}: {', '.join(e.details.get('code_points', []))}",
                                 param_hint="USERNAME") from e
    try:
        check_password_policy(password, username=username)
    except WeakPassword as e:
        raise typer.BadParameter(e.message, param_hint="--password") from e
    engine = _engine()
    try:
        with db_scope(engine) as db:
            hospital_id = None
            if hospital:
                found = db.exec(select(Hospital).where(Hospital.code == hospital)).first()
                if found is None:
                    raise typer.BadParameter(f"unknown hospital {hospital!r}")
                hospital_id = found.id
            try:
                user = create(db, username=username, password=password, role=Role(role), hospital_id=hospital_id)
            except Conflict as e:
                console.print(f"[red]{e.message}[/]")
                raise typer.Exit(1) from e
    finally:
        engine.dispose()  # no pooled connection left for the garbage collector (PostgreSQL warns)
    out.print(f"created user {user.username} ({user.role.value})")


@users.command("unlock")
def unlock_user(username: str) -> None:
    """Clear an account's failed sign-ins (after its owner proved who they are): a lock ends now."""
    from server.accounts.throttle import unlock
    from server.db import db_scope

    engine = _engine()
    try:
        with db_scope(engine) as db:
            found = unlock(db, username=username)
    finally:
        engine.dispose()
    out.print(f"{username}: failed sign-ins cleared" if found else f"{username}: no failed sign-ins recorded")


def import_hospitals(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)]) -> None:
    """Import regions and hospitals from CSV (province, city, county, code, name, kind)."""
    from server.db import db_scope
    from server.hospitals.service import import_hospitals_csv

    with db_scope(_engine()) as db:
        count = import_hospitals_csv(db, file.read_bytes())
    out.print(f"{count} hospitals imported")


roster = typer.Typer(no_args_is_help=True, help="Admission roster (HIS sync).")


Encoding = Annotated[str | None, typer.Option(help="File encoding, e.g. gb18030 (default: UTF-8 with or without "
                                                     "BOM, else GB18030, detected)")]


@roster.command("import")
def import_roster(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)], encoding: Encoding = None,
                  create_beds: Annotated[bool, typer.Option(help="Register wards and beds the registry lacks "
                                                                 "(else such rows are rejected)")] = False) -> None:
    """Import admissions from CSV or JSON; bad rows are listed with line numbers; exit 1 if any."""
    from server.admissions import roster as roster_service
    from server.db import db_scope

    rows = roster_service.parse_rows(file.read_bytes(), file.name, encoding=encoding)
    with db_scope(_engine()) as db:
        report = roster_service.import_roster(db, rows=rows, actor="cli", create_beds=create_beds)
    table = Table("created", "updated", "unchanged", "discharged", "transferred", "rejected", "encoding")
    table.add_row(*(str(x) for x in (report.created, report.updated, report.unchanged, report.discharged,
                                     report.transferred, len(report.rejected), report.encoding)))
    out.print(table)
    if report.registry_mismatches:
        out.print(f"{report.registry_mismatches} admissions state insurance the registry does not (flagged; "
                  "the registry is unchanged)")
    for row in report.cleaned:
        out.print(f"line {row.line}: {row.code}: {row.message}")
    for row in report.rejected:
        out.print(f"line {row.line}: {row.code}: {row.message}")
    raise typer.Exit(1 if report.rejected else 0)


insurance_registry = typer.Typer(no_args_is_help=True, help="The bureau's insurance registry (参保登记).")


@insurance_registry.command("import")
def import_registry(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
                    encoding: Encoding = None) -> None:
    """Import the bureau's registry feed (CSV: insurance_number, insurance_status[, name, insurance_type,
    insured_from, insured_until]); the only writer of the registry; bad rows listed; exit 1 if any."""
    from server.db import db_scope
    from server.persons import registry as registry_service
    from server.tabular import read_csv

    rows = read_csv(file.read_bytes(), required=registry_service.REQUIRED, encoding=encoding, what="registry CSV")
    engine = _engine()
    try:
        with db_scope(engine) as db:
            report = registry_service.import_registry(db, rows=rows, actor="cli")
    finally:
        engine.dispose()  # no pooled connection left for the garbage collector (PostgreSQL warns)
    table = Table("created", "updated", "unchanged", "ineligible", "rejected", "encoding")
    table.add_row(*(str(x) for x in (report.created, report.updated, report.unchanged, report.ineligible,
                                     len(report.rejected), report.encoding)))
    out.print(table)
    for row in report.rejected:
        out.print(f"line {row.line}: {row.code}: {row.message}")
    raise typer.Exit(1 if report.rejected else 0)


beds = typer.Typer(no_args_is_help=True, help="Ward and bed registry.")


@beds.command("import")
def import_beds(file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)], encoding: Encoding = None) -> None:
    """Register wards and beds from CSV (hospital_code, ward_code, bed_label[, ward_name]); exit 1 on bad rows."""
    from server.db import db_scope
    from server.hospitals import registry

    rows = registry.parse_beds(file.read_bytes(), encoding=encoding)
    with db_scope(_engine()) as db:
        report = registry.import_beds(db, rows=rows, actor="cli")
    out.print(f"{report.wards_created} wards and {report.beds_created} beds registered, {report.unchanged} known, "
              f"{len(report.rejected)} rejected ({report.encoding})")
    for row in report.rejected:
        out.print(f"line {row.line}: {row.code}: {row.message}")
    raise typer.Exit(1 if report.rejected else 0)


devices = typer.Typer(no_args_is_help=True, help="Ward devices.")


@devices.command("pairing-code")
def pairing_code(hospital: str, ward: str) -> None:
    """Issue a one-time pairing code for a ward (hospital code, ward code)."""
    from sqlmodel import select

    from server.db import db_scope
    from server.devices.service import create_pairing_code
    from server.hospitals.tables import Hospital, Ward

    with db_scope(_engine()) as db:
        found = db.exec(select(Ward).join(Hospital).where(Hospital.code == hospital, Ward.code == ward)).first()
        if found is None:
            raise typer.BadParameter(f"no ward {ward!r} in hospital {hospital!r}")
        code = create_pairing_code(db, ward_id=found.id or 0, ttl_s=ServerSettings().pairing_code_ttl_s, actor="cli")
    out.print(code)


@devices.command("revoke")
def revoke(device_id: int) -> None:
    """Revoke a device's credential."""
    from server.db import db_scope
    from server.devices.service import revoke as do_revoke

    with db_scope(_engine()) as db:
        do_revoke(db, device_id=device_id, actor="cli")
    out.print(f"device {device_id} revoked")


@devices.command("fixed-camera")
def fixed_camera(device_id: int, bed_id: Annotated[list[int] | None, typer.Option("--bed-id", help="A bed of the "
                 "device's ward it watches (repeat); none: a hand-held tablet again")] = None) -> None:
    """Register a device as the fixed camera of beds (only such a device's signs-of-life liveness is accepted)."""
    from server.db import db_scope
    from server.devices.service import set_fixed_camera

    with db_scope(_engine()) as db:
        device = set_fixed_camera(db, device_id=device_id, bed_ids=bed_id or [], actor="cli")
        beds = list(device.fixed_camera_bed_ids)
    out.print(f"device {device_id}: fixed camera of beds {beds}" if beds else f"device {device_id}: a tablet")


def spot_check(
    county: Annotated[str | None, typer.Option(help="County name")] = None,
    hospital: Annotated[list[str] | None, typer.Option(help="Hospital id or code (repeatable)")] = None,
    deadline: Annotated[str, typer.Option(help="e.g. 20m, 90s")] = "20m",
    wait: Annotated[bool, typer.Option(help="Show live progress until every task has a verdict")] = False,
) -> None:
    """One command: a check task for every current inpatient in scope, each with a nonce and a deadline."""
    from server.campaigns import service
    from server.db import db_scope

    if not county and not hospital:
        raise typer.BadParameter("give --county or at least one --hospital")
    engine = _engine()
    with db_scope(engine) as db:
        ids = service.resolve_scope(db, county=county, hospitals=hospital)
        campaign = service.create_campaign(db, hospital_ids=ids, deadline_s=parse_duration(deadline), actor="cli",
                                           scope={"county": county, "hospitals": hospital})
    out.print(f"campaign {campaign.id}: {campaign.task_count} tasks in {len(ids)} hospitals, "
              f"deadline {campaign.deadline_at:%H:%M:%S} UTC")
    if wait:
        watch(engine, campaign.id or 0)


def watch(engine, campaign_id: int) -> None:  # type: ignore[no-untyped-def]
    """Live progress bar with counts per verdict, then a summary table."""
    from sqlmodel import Session

    from server.campaigns import service

    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("checking", total=None)
        while True:
            with Session(engine) as db:
                p = service.progress(db, campaign_id=campaign_id)
            counts = " ".join(f"{k}={v}" for k, v in p.counts.items() if v)
            bar.update(task, total=p.total, completed=p.done, description=counts or "waiting")
            if p.status == "completed":
                break
            time.sleep(1.0)
    table = Table(title=f"campaign {campaign_id}")
    table.add_column("verdict")
    table.add_column("count", justify="right")
    for verdict, count in p.counts.items():
        if count:
            table.add_row(verdict, str(count))
    out.print(table)
    out.print(f"verification rate {p.verification_rate:.1%}; completed in {p.seconds_to_complete or 0:.1f} s")
