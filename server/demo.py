"""`bedcheck demo`: a simulated county checked on one command, on the embedded database by default."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from server import lifecycle
from server.evidence.workers import default_processes
from server.settings import ServerSettings
from server.simulation.county import CountySpec
from server.simulation.real_faces import default_faces_dir
from server.simulation.run import SimulationOptions, simulate

console = Console(stderr=True)
DEMO_USERS = [("supervisor", "supervisor", None), ("reviewer", "reviewer", None), ("hospital1", "hospital_staff", 0)]
DEMO_PORT = 8000
DEMO_PASSWORD = "demo-password"  # demo only: the demo database is rebuilt on every run


def demo_database_url(settings: ServerSettings) -> str:
    if settings.database_url:
        return settings.database_url
    path = (settings.data_dir / "demo.db").resolve()
    for suffix in ("", "-wal", "-shm", ".audit-checkpoints.jsonl"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def run_demo(*, serve: bool, as_json: bool, hospitals: int, inpatients: int, deadline_s: int, seed: int,
             port: int = DEMO_PORT, offline_s: float = 5.0, review: bool = True) -> None:
    lifecycle.stop_on_signals()  # SIGTERM stops the server and devices as Ctrl-C does
    settings = ServerSettings()
    url = demo_database_url(settings)
    spec = CountySpec(hospitals=hospitals, public_hospitals=min(hospitals, round(hospitals * 28 / 46)),
                      inpatients=inpatients, seed=seed)
    console.print(f"[bold]bedcheck demo[/]: {spec.hospitals} hospitals, {spec.inpatients} inpatients, "
                  f"deadline {deadline_s} s, database {url.split('@')[-1]}")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, transient=as_json) as bar:
        task = bar.add_task("building county", total=None)

        def on_progress(p) -> None:  # type: ignore[no-untyped-def]
            counts = " ".join(f"{k}={v}" for k, v in p.counts.items() if v)
            bar.update(task, total=p.total, completed=p.done, description=counts or "waiting")

        def report(summary: dict, base_url: str | None = None) -> None:  # type: ignore[type-arg]
            bar.stop()
            if as_json:
                print(json.dumps(summary, ensure_ascii=False))  # noqa: T201  (the command's one JSON answer)
            else:
                _print_summary(summary)
            if base_url is not None:
                _serve(url, base_url)

        faces_dir = default_faces_dir()
        if faces_dir is not None:
            bar.console.print(f"real face images from {faces_dir} for part of the county")
        options = SimulationOptions(deadline_s=deadline_s, faces_dir=faces_dir, port=port if serve else 0,
                                    offline_delay_s=offline_s, sweep_interval_s=1.0 if serve else 0.5, review=review,
                                    # The evidence check in worker processes, one per core, not in a web process.
                                    evidence_workers=default_processes())
        # Serving, the simulated ward devices keep running behind the console: a spot check launched from it
        # is answered like the first one.
        summary = simulate(url, spec, options, on_progress, while_serving=report if serve else None)
    if not serve:
        report(summary)


def _print_summary(summary: dict) -> None:  # type: ignore[type-arg]
    table = Table(title="spot check", show_header=False)
    for key in ("inpatients", "hospitals", "wards", "offline_wards", "real_face_beds", "seconds_to_complete",
                "results_per_second", "verification_rate", "aggregate_query_ms",
                "verified_flagged_for_place"):
        table.add_row(key, str(summary.get(key, "")))
    for verdict, count in summary["verdicts"].items():
        table.add_row(f"verdict {verdict}", str(count))
    for kind in summary["precision"]:
        table.add_row(f"{kind} (seeded {summary['seeded'][kind]})",
                      f"precision {summary['precision'][kind]:.1%}  recall {summary['recall'][kind]:.1%}")
    for kind, n in summary.get("confirmed", {}).items():
        table.add_row(f"confirmed {kind}", f"{n} (seeded {summary['confirmed_seeded'][kind]})")
    out = Console()
    if "funds" in summary:  # the simulated reviewers decided every flag (not with --no-review)
        funds = summary["funds"]
        table.add_row("funds refused", f"{funds['refused']} (seeded truth {funds['expected_refused']})")
    out.print(table)
    if "summary_line" in summary:
        # The line a bureau writes in its report (确认挂床 N 人次，拒付违规基金 ¥X).
        out.print(f"[bold]{summary['summary_line']}[/]")


def _serve(url: str, base_url: str) -> None:
    """Demo users, then wait for Ctrl-C while the server and the simulated devices run."""
    from server.accounts.service import create_user
    from server.accounts.tables import Role
    from server.db import db_scope, make_engine
    from server.hospitals.tables import Hospital

    engine = make_engine(url)
    with db_scope(engine) as db:
        first_hospital = db.exec(Hospital.__table__.select().limit(1)).first()  # type: ignore[attr-defined]
        for username, role, _ in DEMO_USERS:
            create_user(db, username=username, password=DEMO_PASSWORD, role=Role(role),
                        hospital_id=first_hospital.id if role == "hospital_staff" else None)
    engine.dispose()
    console.print(f"\nconsole: [bold]{base_url}/console[/]   API docs: {base_url}/docs")
    for username, role, _ in DEMO_USERS:
        console.print(f"  sign in as [bold]{username}[/] / {DEMO_PASSWORD}  ({role})")
    console.print("The simulated ward devices keep answering checks launched from the console. Ctrl-C to stop.")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping")
