"""`bedcheck-edge`: pair, run, check one bed, mark a bed empty or exempt, status."""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from edge_client.api import ApiError
from edge_client.config import EdgeSettings
from edge_client.credentials import NotPaired
from edge_client.device import CheckRefused, Device, StoredCheck, pair_device
from edge_client.outbox import AlreadyAnswered
from edge_client.sources import SourceError
from models.errors import BedcheckError
from models.verdicts import ExemptionReason

app = typer.Typer(help="bedcheck device: ward tablet or bed camera.", no_args_is_help=True)

StateDir = Annotated[Path | None, typer.Option("--state-dir", help="Default: BEDCHECK_EDGE_STATE_DIR or var/edge")]


def _settings(state_dir: Path | None, **overrides: Any) -> EdgeSettings:
    if state_dir is not None:
        overrides["state_dir"] = state_dir
    try:
        return EdgeSettings(**overrides)
    except ValidationError as e:
        for error in e.errors():
            where = ".".join(str(p) for p in error["loc"])
            typer.echo(f"setting BEDCHECK_EDGE_{where.upper()} = {error.get('input')!r}: {error['msg']}", err=True)
        raise typer.Exit(2) from e


def _device(settings: EdgeSettings) -> Device:
    try:
        return Device(settings)
    except NotPaired as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from e


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def pair(server: Annotated[str, typer.Option(help="Server URL, e.g. https://bedcheck.example")],
         code: Annotated[str, typer.Option(help="One-time pairing code from an administrator")],
         state_dir: StateDir = None) -> None:
    """Register this device with a one-time code; the credential is saved with mode 0600."""
    settings = _settings(state_dir)
    try:
        paired = pair_device(settings, server, code)
    except ApiError as e:
        typer.echo(f"pairing failed: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo(f"paired as device {paired.device_id} (hospital {paired.hospital_id}, ward {paired.ward_id})")


@app.command()
def run(state_dir: StateDir = None,
        screen: Annotated[bool, typer.Option(help="Serve the nurse's page on loopback")] = True,
        verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """The device loop: tasks, roll-calls, roster, outbox sync, heartbeats. Stops cleanly on SIGTERM."""
    from edge_client.loop import Runner

    _logging(verbose)
    runner = Runner(_device(_settings(state_dir, screen_enabled=screen)))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: runner.stop_event.set())
    runner.run_until_stopped()


@app.command()
def check(bed: Annotated[str, typer.Option(help="Bed label, as on the roster")],
          source: Annotated[str, typer.Option(help="Camera index, rtsp/http URL, video file[#t=s] or image folder")],
          state_dir: StateDir = None, upload: Annotated[bool, typer.Option(help="Try to upload at once")] = True,
          verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Check one bed now: capture a burst, judge it, store the result; upload if the server is reachable."""
    _logging(verbose)
    device = _device(_settings(state_dir))
    try:
        stored = device.check_bed(bed, source)
        typer.echo(f"bed {stored.bed_label}: {stored.record.local_verdict.value} "
                   f"({stored.record.upload.outcome.value}), stored as result {stored.result_id}")
        _upload(device, upload)
    except (CheckRefused, SourceError, AlreadyAnswered, BedcheckError) as e:
        typer.echo(f"bed {bed} not checked: {e}", err=True)
        raise typer.Exit(1) from e
    finally:
        device.close()


@app.command()
def reference(bed: Annotated[str, typer.Option(help="Bed label, as on the roster")],
              source: Annotated[str, typer.Option(help="Camera index, rtsp/http URL, video file or image folder")],
              fixed_camera: Annotated[bool, typer.Option(help="The source is the bed's fixed camera")] = False,
              state_dir: StateDir = None, verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Capture a reference frame of a bed's surroundings (when the bed is registered or re-arranged).

    Frame the headboard, the wall and the equipment; faces are blurred before the frame leaves the device.
    """
    _logging(verbose)
    device = _device(_settings(state_dir))
    try:
        ref = device.capture_reference(bed, source, fixed_camera=fixed_camera)
        waiting = "; 待医保部门审批后生效 (in force once the bureau approves it)" if ref.status == "pending" else ""
        typer.echo(f"bed {bed}: reference {ref.reference_id} stored ({ref.feature_count} features, "
                   f"{ref.source.value}){waiting}")
    except ApiError as e:
        typer.echo(f"bed {bed}: reference refused: {e}", err=True)
        raise typer.Exit(1) from e
    except (CheckRefused, SourceError, BedcheckError) as e:
        typer.echo(f"bed {bed}: no reference captured: {e}", err=True)
        raise typer.Exit(1) from e
    finally:
        device.close()


@app.command()
def empty(bed: Annotated[str, typer.Option()], note: Annotated[str, typer.Option()] = "bed empty",
          state_dir: StateDir = None) -> None:
    """Report a bed empty (the server records absent, with this note)."""
    _report_bed(state_dir, bed, lambda device: device.mark_empty(bed, note), "reported empty")


@app.command()
def exempt(bed: Annotated[str, typer.Option()], reason: Annotated[ExemptionReason, typer.Option()],
           note: Annotated[str, typer.Option()] = "", state_dir: StateDir = None) -> None:
    """Report a patient away for a reason (ICU, surgery...): sent as an empty bed with the reason for review."""
    _report_bed(state_dir, bed, lambda device: device.mark_exempt(bed, reason, note),
                f"reported exempt ({reason.value})")


def _report_bed(state_dir: Path | None, bed: str, report: Callable[[Device], StoredCheck], what: str) -> None:
    """A nurse's report about a bed: stored in the outbox first, then uploaded when the server answers."""
    device = _device(_settings(state_dir))
    try:
        stored = report(device)
        typer.echo(f"bed {stored.bed_label}: {what}, stored as result {stored.result_id}")
        _upload(device, True)
    except (CheckRefused, AlreadyAnswered) as e:
        typer.echo(f"bed {bed}: {e}", err=True)
        raise typer.Exit(1) from e
    finally:
        device.close()


@app.command()
def status(state_dir: StateDir = None) -> None:
    """Pairing, outbox counts, open tasks and the last results (as JSON)."""
    from edge_client.screen import screen_state

    device = _device(_settings(state_dir))
    try:
        state = {"device_id": device.credentials.device_id, "ward_id": device.credentials.ward_id,
                 "server_url": device.credentials.server_url, "clock_offset_ms": device.api.clock_offset_ms,
                 **screen_state(device)}
        typer.echo(json.dumps(state, ensure_ascii=False, indent=2))
    finally:
        device.close()


def _upload(device: Device, wanted: bool) -> None:
    if not wanted:
        return
    device.syncer.attempts = 2  # a person is waiting: do not sit in a long backoff
    report = device.sync()
    if report.offline:
        typer.echo("server unreachable: the result stays in the outbox until `bedcheck-edge run` syncs it")
    else:
        typer.echo(f"uploaded {report.sent} result(s), {report.rejected} rejected")
