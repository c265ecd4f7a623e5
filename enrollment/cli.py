"""`bedcheck enroll`: bulk enrollment from a roster or a photo folder, and the 1:N index."""

from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from server.settings import ServerSettings

app = typer.Typer(help="Enroll insured persons' faces (bulk) and keep the 1:N face index.",
                  invoke_without_command=True, no_args_is_help=False)
console = Console(stderr=True)
out = Console()


class Layout(StrEnum):
    ROSTER = "roster"
    FOLDERS = "folders"
    FLAT = "flat"


def _engine(settings: ServerSettings):  # type: ignore[no-untyped-def]
    from server.db import make_engine, upgrade

    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    return engine


@app.callback()
def enroll(
    ctx: typer.Context,
    photos: Annotated[Path | None, typer.Option(help="Photo directory", exists=True, file_okay=False)] = None,
    roster: Annotated[Path | None, typer.Option(help="CSV: insurance_number,name,photo|photos", exists=True,
                                                dir_okay=False)] = None,
    layout: Annotated[Layout | None, typer.Option(help="roster (default with --roster); folders: DIR/<person>/*;"
                                                  " flat: one person per file")] = None,
    pairs: Annotated[Path | None, typer.Option(help="flat layout: file_x,file_y,Decision CSV; 'Yes' pairs are "
                                               "one person (deepface's master.csv)", exists=True)] = None,
    id_prefix: Annotated[str, typer.Option(help="Prefix of generated insurance numbers (no roster)")] = "AUTO",
    rejects: Annotated[Path | None, typer.Option(help="Rejects CSV (default data_dir/enrollment_rejects.csv)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = os.cpu_count() or 1,
    replace: Annotated[bool, typer.Option(help="Re-enrollment: deactivate a person's earlier faces (kept as "
                                          "history) when a new one is accepted; needs --reason, is audited "
                                          "and raises a review flag per person")] = False,
    reason: Annotated[str, typer.Option(help="Why faces are replaced (with --replace)")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar")] = False,
) -> None:
    """Bulk-enroll photos: `bedcheck enroll --photos DIR [--roster persons.csv]`. A rerun skips what is done."""
    if ctx.invoked_subcommand is not None:
        return
    if photos is None:
        raise typer.BadParameter("give --photos DIR (and --roster CSV, or --layout folders|flat)",
                                 param_hint="--photos")
    if replace and not reason.strip():
        raise typer.BadParameter("replacing enrolled faces needs a reason", param_hint="--reason")
    from enrollment import sources
    from enrollment.pipeline import EnrollmentOptions, run_enrollment
    from models.settings import EngineSettings

    chosen = layout or (Layout.ROSTER if roster else Layout.FOLDERS)
    source_rejects: list[sources.SourceReject] = []
    if chosen == Layout.ROSTER:
        if roster is None:
            raise typer.BadParameter("the roster layout needs --roster", param_hint="--roster")
        found = sources.roster_jobs(roster, photos)
        jobs, source_rejects = found.jobs, found.rejects
    elif chosen == Layout.FOLDERS:
        jobs = sources.folder_jobs(photos, prefix=id_prefix)
    else:
        jobs = sources.flat_jobs(photos, pairs=pairs, prefix=id_prefix)

    settings = ServerSettings()
    engine_settings = EngineSettings.load()
    engine = _engine(settings)
    options = EnrollmentOptions(
        index_path=settings.face_index_path_for(engine_settings.engine),
        rejects_path=rejects or settings.data_dir / "enrollment_rejects.csv",
        workers=workers, replace=replace, replace_reason=reason, photo_dir=settings.enrollment_photo_dir,
        show_progress=not quiet)
    try:
        summary = run_enrollment(engine, jobs, options, engine_settings, source_rejects)
    finally:
        engine.dispose()
    if as_json:
        out.print_json(json.dumps(summary.as_dict()))
        return
    out.print(f"photos: {len(jobs)} listed, {summary.enrolled} enrolled, {summary.skipped} already enrolled, "
              f"{summary.rejected} rejected ({options.rejects_path}); persons created: {summary.persons_created}; "
              f"duplicate-identity flags: {summary.duplicate_flags}; {summary.as_dict()['images_per_s']} images/s")


@app.command("rebuild-index")
def rebuild_index(
    check: Annotated[bool, typer.Option(help="Only bring the index in step (catch up, rebuild if stale)")] = False,
) -> None:
    """Rebuild the 1:N face index from the database (or, with --check, only when missing or stale)."""
    from sqlmodel import Session

    from models.settings import EngineSettings
    from server.persons.face_index import build_from_db, load_or_rebuild

    settings = ServerSettings()
    face_engine = EngineSettings.load()
    engine = _engine(settings)
    path = settings.face_index_path_for(face_engine.engine)
    try:
        with Session(engine) as db:
            if check:
                index, how = load_or_rebuild(db, path, engine=face_engine.engine_tag)
            else:
                index, how = build_from_db(db, engine=face_engine.engine_tag), "rebuilt"
                index.save(path)
    finally:
        engine.dispose()
    out.print(f"face index {how}: {len(index)} embeddings in {path}")


@app.command("reencode")
def reencode(
    engine_name: Annotated[str, typer.Option("--engine", help="Engine to re-embed the gallery with: sface or dlib")],
    rejects: Annotated[Path | None, typer.Option(help="Rejects CSV (default data_dir/reencode_rejects.csv)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = os.cpu_count() or 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar")] = False,
) -> None:
    """Re-embed every enrolled face (insured persons and staff) from its kept face chip with another engine, and
    rebuild that engine's 1:N index. Resumable; faces enrolled without a chip are listed as needing new photos."""
    from enrollment.reencode import reencode_gallery
    from models.errors import UnknownEngine
    from models.faces.engines import REAL_ENGINES, profile
    from models.settings import EngineSettings

    try:
        name = profile(engine_name).name
    except UnknownEngine as e:
        raise typer.BadParameter(e.message, param_hint="--engine") from e
    if name not in REAL_ENGINES:
        raise typer.BadParameter("the synthetic engine has no images to look at", param_hint="--engine")
    settings = ServerSettings()
    target = EngineSettings.load().model_copy(update={"engine": name})
    engine = _engine(settings)
    rejects_path = rejects or settings.data_dir / "reencode_rejects.csv"
    try:
        summary = reencode_gallery(engine, target, index_path=settings.face_index_path_for(name),
                                   rejects_path=rejects_path, workers=workers, show_progress=not quiet)
    finally:
        engine.dispose()
    if as_json:
        out.print_json(json.dumps(summary.as_dict()))
        return
    out.print(f"engine {summary.engine}: {summary.faces} faces, {summary.reencoded} re-encoded, "
              f"{summary.already_done} already done, {summary.rejected} rejected, {summary.without_chip} without a "
              f"face chip ({rejects_path}); index: {summary.index_embeddings} embeddings; {summary.elapsed_s} s")
    if summary.needs_new_photos:
        out.print(f"{len(summary.needs_new_photos)} people need new photos for {summary.engine}:")
        for person in summary.needs_new_photos:
            out.print(f"  {person['kind']} {person['number']} ({person['faces']} faces without a chip)")
