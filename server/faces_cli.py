"""`bedcheck faces ...`: check images against the enrollment gates, compare two faces, evaluate accuracy on
labelled pairs and calibrate the match threshold, for either engine (`--engine sface|dlib`)."""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import Progress

from models.errors import BedcheckError
from models.faces.engines import EngineName
from models.settings import EngineSettings, default_calibration_file

app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)

_engine = None
_engine_name: EngineName | None = None

EngineOption = Annotated[EngineName | None, typer.Option(
    "--engine", help="Face engine: sface or dlib (default: the configured one)")]


def _settings(engine: EngineName | None) -> EngineSettings:
    settings = EngineSettings.load()
    if engine is None:
        return settings
    if engine == EngineName.SYNTHETIC:
        raise typer.BadParameter("the synthetic engine has no images to look at", param_hint="--engine")
    return settings.model_copy(update={"engine": engine})


def _init_worker(engine: EngineName | None) -> None:
    global _engine_name
    _engine_name = engine


def _worker_engine():  # type: ignore[no-untyped-def]
    # One engine per worker process: each loads its models once per process.
    global _engine
    if _engine is None:
        from models.faces.engine import FaceEngine

        _engine = FaceEngine(_settings(_engine_name))
    return _engine


def _encode_file(path: str) -> tuple[str, list[float] | None, str | None]:
    from models.faces.decode import load_image_file

    engine = _worker_engine()
    try:
        encoding = engine.encode_largest(load_image_file(path, engine.settings))
    except BedcheckError as e:
        return path, None, e.code.value
    return path, (None if encoding is None else encoding.tolist()), (None if encoding is not None else "no_face")


def encode_files(paths: list[Path], workers: int, engine: EngineName | None = None) -> dict[str, list[float] | None]:
    """Largest-face encoding of each file, on `workers` processes with a progress bar."""
    results: dict[str, list[float] | None] = {}
    with (Progress(console=console, transient=True) as progress,
          # spawn, not fork: a forked child of a process with threads (a server, a browser driver) can inherit
          # a held lock and hang; enrollment's pool does the same (enrollment/parallel.py).
          ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                              initargs=(engine,)) as pool):
        task = progress.add_task("encoding faces", total=len(paths))
        for path, encoding, _ in pool.map(_encode_file, [str(p) for p in paths], chunksize=4):
            results[path] = encoding
            progress.advance(task)
    return results


def _score_pairs(pairs_file: Path, images: Path, workers: int,  # type: ignore[no-untyped-def]
                 engine: EngineName | None = None):
    import numpy as np

    from models.faces.evaluation import Scored, read_pairs

    pairs = read_pairs(pairs_file)
    files = sorted({images / p.left for p in pairs} | {images / p.right for p in pairs})
    encodings = encode_files(files, workers, engine)
    scored = []
    for pair in pairs:
        a, b = encodings.get(str(images / pair.left)), encodings.get(str(images / pair.right))
        distance = None if a is None or b is None else float(np.linalg.norm(np.array(a) - np.array(b)))
        scored.append(Scored(pair, distance))
    return scored


_PAIRS_HELP = ("Labelled pairs: LFW pairs.txt, or a CSV with columns left,right,same (paths relative to "
               "--images; same = 1/0, yes/no, true/false)")


@app.command()
def check(images: Annotated[list[Path], typer.Argument(help="Image files to check")],
          engine_name: EngineOption = None) -> None:
    """Report each image against the enrollment gates; exit 1 when any image fails."""
    from models.faces.decode import load_image_file
    from models.faces.engine import FaceEngine

    engine = FaceEngine(_settings(engine_name))
    failed = 0
    for path in images:
        try:
            face = engine.enroll_face(load_image_file(path, engine.settings))
            typer.echo(f"{path}\tok\teye_distance={face.quality.eye_distance_px:.0f}px "
                       f"sharpness={face.quality.sharpness:.0f}")
        except (BedcheckError, OSError) as e:
            failed += 1
            code = e.code.value if isinstance(e, BedcheckError) else "unreadable"
            typer.echo(f"{path}\t{code}\t{e}")
    raise typer.Exit(1 if failed else 0)


@app.command()
def compare(a: Path, b: Path, engine_name: EngineOption = None) -> None:
    """Distance between the largest faces of two images, and the decision at the engine's threshold."""
    from models.faces.decode import load_image_file
    from models.faces.engine import FaceEngine
    from models.faces.match import Embeddings, match

    engine = FaceEngine(_settings(engine_name))
    try:
        enc_a = engine.encode_largest(load_image_file(a, engine.settings))
        enc_b = engine.encode_largest(load_image_file(b, engine.settings))
    except BedcheckError as e:
        typer.echo(f"error\t{e.code.value}\t{e}")
        raise typer.Exit(2) from e
    if enc_a is None or enc_b is None:
        typer.echo(f"error\tno_face\tno face found in {a if enc_a is None else b}")
        raise typer.Exit(2)
    result = match(Embeddings.of(engine.tag, enc_a), Embeddings.of(engine.tag, enc_b), engine.settings.match_threshold)
    verdict = "same" if result.is_match else "different"
    typer.echo(f"distance={result.distance:.4f}\tthreshold={result.threshold:.4f}\t{verdict}")


class Protocol(StrEnum):
    PAIRS = "pairs"
    TEMPLATES = "templates"


@app.command("eval")
def evaluate(
    folder: Annotated[Path | None, typer.Argument(help="templates: an LFW-layout folder DIR/<id>/<id>_000N.jpg "
                                                       "(or DIR/images/<id>/...)", exists=True)] = None,
    protocol: Annotated[Protocol, typer.Option(help="pairs: labelled pairs, one image each side; templates: "
                                                    "K enrolled images against M probe images")] = Protocol.PAIRS,
    pairs: Annotated[Path | None, typer.Option(help=_PAIRS_HELP, exists=True)] = None,
    images: Annotated[Path | None, typer.Option(help="Directory the pairs' image paths are relative to",
                                                exists=True)] = None,
    enroll: Annotated[int, typer.Option(min=1, max=20, help="templates: images per template")] = 2,
    probe: Annotated[int, typer.Option(min=1, max=20, help="templates: images per probe (fewer where an "
                                                           "identity has too few)")] = 3,
    draws: Annotated[int, typer.Option(min=1, max=1000, help="templates: random draws")] = 20,
    seed: Annotated[int, typer.Option(help="templates: seed of the draws")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    plot: Annotated[Path | None, typer.Option(help="pairs: write a ROC curve PNG here")] = None,
    workers: Annotated[int, typer.Option(min=1)] = os.cpu_count() or 1,
    engine_name: EngineOption = None,
) -> None:
    """Verification accuracy: on labelled pairs (`--pairs --images`), or templates against fused probes
    (`--protocol templates DIR`: TAR at FAR 1 %, 0.1 %, 0.01 % and the figures at the shipped threshold, with
    the 1:1 figures of the same identities beside them).

    A face not found counts as an error (a false reject or a false accept).
    """
    if protocol == Protocol.TEMPLATES:
        if folder is None:
            raise typer.BadParameter("the templates protocol needs a folder of identities", param_hint="DIR")
        _evaluate_templates(folder, enroll=enroll, probe=probe, draws=draws, seed=seed, as_json=as_json,
                            workers=workers, engine_name=engine_name)
        return
    if pairs is None or images is None:
        raise typer.BadParameter("the pairs protocol needs --pairs and --images", param_hint="--pairs")
    _evaluate_pairs(pairs, images, as_json=as_json, plot=plot, workers=workers, engine_name=engine_name)


def _evaluate_pairs(pairs: Path, images: Path, *, as_json: bool, plot: Path | None, workers: int,
                    engine_name: EngineName | None) -> None:
    from models.faces.evaluation import best_threshold, rates_at

    settings = _settings(engine_name)
    scored = _score_pairs(pairs, images, workers, engine_name)
    configured, best = rates_at(scored, settings.match_threshold), best_threshold(scored)
    if plot:
        _plot_roc(scored, plot)
    if as_json:
        records = [{"left": s.pair.left, "right": s.pair.right, "same": s.pair.same, "distance": s.distance,
                    "decision": None if s.distance is None else s.distance <= settings.match_threshold}
                   for s in scored]
        typer.echo(json.dumps({"engine": settings.engine.value, "engine_version": settings.engine_tag,
                               "pairs": records, "configured": asdict(configured), "best": asdict(best)}))
        return
    typer.echo(f"engine: {settings.engine.value} ({settings.engine_tag})")
    for label, rates in (("configured", configured), ("best", best)):
        typer.echo(f"{label}: threshold={rates.threshold:.4f} accuracy={rates.accuracy:.4f} "
                   f"FAR={rates.false_accept_rate:.4f} FRR={rates.false_reject_rate:.4f} "
                   f"errors={rates.errors}/{len(scored)} faces_not_found={rates.faces_not_found}")


TARGET_FARS = (0.01, 0.001, 0.0001)


def template_report(folder: Path, *, enroll: int, probe: int, draws: int, seed: int, workers: int,
                    engine_name: EngineName | None) -> dict[str, Any]:
    """The templates protocol (K against M) and the 1:1 protocol on the same identities, as one dict."""
    from models.faces.engines import UNIT_LENGTH_TAGS
    from models.faces.evaluation import rates_at_threshold, read_identities, tar_at_far, template_scores

    settings = _settings(engine_name)
    try:
        identities = read_identities(folder)
    except BedcheckError as e:
        _fail(e.code.value, e.message, as_json=False)
    paths = {name: [str(p) for p in found] for name, found in identities.items()}
    encodings = encode_files([Path(p) for found in paths.values() for p in found], workers, engine_name)
    report: dict[str, Any] = {"engine": settings.engine.value, "engine_version": settings.engine_tag,
                              "folder": str(folder), "identities": len(paths), "draws": draws, "seed": seed,
                              "images": len(encodings),
                              "images_without_face": sum(1 for v in encodings.values() if v is None)}
    for label, (k, m) in (("templates", (enroll, probe)), ("one_to_one", (1, 1))):
        scores = template_scores(paths, encodings, enroll=k, probe=m, draws=draws, seed=seed,
                                 unit=settings.engine_tag in UNIT_LENGTH_TAGS)
        report[label] = {
            "enroll": k, "probe": m, "templates_per_draw": scores.templates, "probes_per_draw": scores.probes,
            "probe_images_mean": round(scores.probe_images_mean, 3),
            "at_far": [asdict(tar_at_far(scores, far)) for far in TARGET_FARS],
            "shipped": rates_at_threshold(scores, settings.match_threshold),
            "genuine_median": _nan_quantile(scores.genuine, 0.5),
            "impostor_mean": _nan_stat(scores.impostor, "mean"), "impostor_sd": _nan_stat(scores.impostor, "std")}
    return report


def _nan_quantile(values, q: float) -> float | None:  # type: ignore[no-untyped-def]
    import numpy as np

    found = values[~np.isnan(values)]
    return round(float(np.quantile(found, q)), 4) if found.size else None


def _nan_stat(values, stat: str) -> float | None:  # type: ignore[no-untyped-def]
    import numpy as np

    found = values[~np.isnan(values)]
    return round(float(getattr(np, stat)(found)), 4) if found.size else None


def _evaluate_templates(folder: Path, *, enroll: int, probe: int, draws: int, seed: int, as_json: bool,
                        workers: int, engine_name: EngineName | None) -> None:
    report = template_report(folder, enroll=enroll, probe=probe, draws=draws, seed=seed, workers=workers,
                             engine_name=engine_name)
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"engine: {report['engine']} ({report['engine_version']}); {report['identities']} identities, "
               f"{report['images']} images ({report['images_without_face']} without a face found), "
               f"{draws} draws")
    for label in ("templates", "one_to_one"):
        part = report[label]
        typer.echo(f"{label}: {part['enroll']} enrolled against {part['probe']} probe images "
                   f"(mean {part['probe_images_mean']:.2f} per genuine probe); per draw {part['templates_per_draw']} "
                   f"templates x {part['probes_per_draw']} probes; genuine {part['shipped']['genuine']}, "
                   f"impostor {part['shipped']['impostor']}")
        for point in part["at_far"]:
            typer.echo(f"  TAR at FAR {point['target_far']:.2%}: {point['true_accept_rate']:.4f} "
                       f"(threshold {point['threshold']:.4f}, FAR {point['false_accept_rate']:.5f})")
        shipped = part["shipped"]
        typer.echo(f"  shipped threshold {shipped['threshold']:.4f}: accuracy {shipped['accuracy']:.4f} "
                   f"TAR {shipped['true_accept_rate']:.4f} FAR {shipped['false_accept_rate']:.5f} "
                   f"faces_not_found {shipped['faces_not_found']}")


@app.command()
def calibrate(
    folder: Annotated[Path | None, typer.Argument(help="templates: an LFW-layout folder of the site's own people",
                                                  exists=True)] = None,
    protocol: Annotated[Protocol, typer.Option(help="pairs: fit on labelled pairs; templates: on K enrolled "
                                                    "against M probe images (what a bed check decides on)")]
    = Protocol.PAIRS,
    pairs: Annotated[Path | None, typer.Option(help=_PAIRS_HELP, exists=True)] = None,
    images: Annotated[Path | None, typer.Option(help="Directory the pairs' image paths are relative to",
                                                exists=True)] = None,
    target_far: Annotated[float, typer.Option(min=0.0, max=1.0, help="Largest false-accept rate")] = 0.001,
    enroll: Annotated[int, typer.Option(min=1, max=20)] = 2,
    probe: Annotated[int, typer.Option(min=1, max=20)] = 3,
    draws: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    out: Annotated[Path | None, typer.Option(help="Settings file to write")] = None,
    workers: Annotated[int, typer.Option(min=1)] = os.cpu_count() or 1,
    engine_name: EngineOption = None,
) -> None:
    """Fit the engine's match threshold to a target false-accept rate on a site's own faces and write it to the
    engine settings file: on templates against fused probes (`--protocol templates DIR`, the rule a bed check,
    duplicate identity and naming use) or on labelled pairs."""
    settings = _settings(engine_name)
    if protocol == Protocol.TEMPLATES:
        if folder is None:
            raise typer.BadParameter("the templates protocol needs a folder of identities", param_hint="DIR")
        threshold, summary = _fit_templates(folder, target_far, enroll=enroll, probe=probe, draws=draws,
                                            workers=workers, engine_name=engine_name)
    else:
        if pairs is None or images is None:
            raise typer.BadParameter("the pairs protocol needs --pairs and --images", param_hint="--pairs")
        from models.faces.evaluation import calibrate as pick

        scored = _score_pairs(pairs, images, workers, engine_name)
        try:
            rates = pick(scored, target_far)
        except BedcheckError as e:
            _fail(e.code.value, e.message, as_json=False)
        threshold = rates.threshold
        summary = (f"accuracy={rates.accuracy:.4f} FAR={rates.false_accept_rate:.4f} "
                   f"FRR={rates.false_reject_rate:.4f}")
    key = f"BEDCHECK_ENGINE_{settings.engine.value.upper()}_MATCH_THRESHOLD"
    path = out or default_calibration_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = [line for line in (path.read_text().splitlines() if path.exists() else []) if not line.startswith(f"{key}=")]
    path.write_text("\n".join([*kept, f"{key}={threshold:.4f}"]) + "\n")
    typer.echo(f"engine={settings.engine.value} threshold={threshold:.4f} {summary} -> {path}")


def _fit_templates(folder: Path, target_far: float, *, enroll: int, probe: int, draws: int, workers: int,
                   engine_name: EngineName | None) -> tuple[float, str]:
    from models.faces.engines import UNIT_LENGTH_TAGS
    from models.faces.evaluation import read_identities, tar_at_far, template_scores

    settings = _settings(engine_name)
    try:
        identities = read_identities(folder)
    except BedcheckError as e:
        _fail(e.code.value, e.message, as_json=False)
    paths = {name: [str(p) for p in found] for name, found in identities.items()}
    encodings = encode_files([Path(p) for found in paths.values() for p in found], workers, engine_name)
    scores = template_scores(paths, encodings, enroll=enroll, probe=probe, draws=draws, seed=0,
                             unit=settings.engine_tag in UNIT_LENGTH_TAGS)
    if scores.genuine.size == 0 or scores.impostor.size == 0:
        _fail("invalid_input", f"{folder}: needs identities with more than {enroll} images, and at least two "
                               "identities", as_json=False)
    point = tar_at_far(scores, target_far)
    return point.threshold, (f"TAR={point.true_accept_rate:.4f} FAR={point.false_accept_rate:.5f} "
                             f"(templates {enroll} against {probe}, {draws} draws)")


def _plot_roc(scored, path: Path) -> None:  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    from models.faces.evaluation import roc_points

    far, tar = roc_points(scored)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(far, tar)
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlabel("false-accept rate")
    ax.set_ylabel("true-accept rate")
    ax.set_title("bedcheck faces eval")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


@app.command()
def liveness(
    source: Annotated[str, typer.Argument(help="Video file (clip.mp4[#t=START]), image folder, one image, or a "
                                               "camera index")],
    challenge: Annotated[str, typer.Option(help="Actions in order, comma-separated: blink, turn_left, "
                                                "turn_right, look_up, look_down, open_mouth")] = "",
    motion: Annotated[bool, typer.Option("--motion", help="Judge as a fixed bed camera (signs of life, no "
                                                          "challenge)")] = False,
    time_limit: Annotated[float | None, typer.Option(min=0.0, help="Seconds allowed per action (0 = none; "
                                                                  "default: the engine setting)")] = None,
    max_s: Annotated[float | None, typer.Option(min=0.1, help="Read at most this many seconds")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Judge a burst against a challenge, in order; exit 0 when live, 1 when not, 2 on bad input.

    Directions are in image coordinates of the upright frame: turn_left = the nose moves towards the
    image's left edge. A single image or a still is never live.
    """
    import time

    from models.faces.liveness.actions import parse_challenge
    from models.faces.liveness.burst import read_burst
    from models.faces.liveness.judge import check_challenge, check_motion
    from models.faces.liveness.track import default_landmarker, track_frames

    try:
        actions = [] if motion and not challenge else parse_challenge(challenge)
    except ValueError as e:
        _fail("invalid_input", str(e), as_json)
    settings = EngineSettings.load()
    if time_limit is not None:
        settings = settings.model_copy(update={"challenge_action_timeout_s": time_limit})
    started = time.process_time()
    try:
        burst = read_burst(source, settings, max_s=max_s)
    except BedcheckError as e:
        _fail(e.code.value, e.message, as_json)
    track = track_frames(burst.frames, burst.times_s, default_landmarker(settings), settings)
    result = check_motion(track, settings) if motion else check_challenge(track, actions, settings)
    cpu_s = time.process_time() - started
    planarity = result.planarity.as_dict() if result.planarity is not None else None
    answer = {
        "source": burst.description, "is_live": result.is_live, "score": result.score, "method": result.method,
        "challenge": [a.value for a in actions],
        "actions": [{"action": a.action.value, "passed": a.passed, "time_s": a.time_s, "value": a.value}
                    for a in result.actions],
        "residual": planarity["residual"] if planarity else None, "planarity": planarity,
        "motion": result.motion, "reasons": list(result.reasons),
        "frames": len(burst.frames), "frames_with_face": len(track.tracked),
        "duration_s": round(burst.times_s[-1], 3) if burst.times_s else 0.0, "cpu_s": round(cpu_s, 3),
    }
    if as_json:
        typer.echo(json.dumps(answer, ensure_ascii=False))
    else:
        typer.echo(f"{'live' if result.is_live else 'not live'}\tscore={result.score:.3f}\t"
                   f"reasons={','.join(result.reasons) or '-'}")
        for a in result.actions:
            typer.echo(f"  {a.action.value}\t{'done at ' + str(a.time_s) + ' s' if a.passed else 'not done'}")
        if planarity:
            typer.echo(f"  3-D test: {planarity['verdict']} depth={planarity['depth']} "
                       f"residual={planarity['residual']} threshold={planarity['threshold']} "
                       f"pose_change={planarity['pose_change_deg']} deg")
    raise typer.Exit(0 if result.is_live else 1)


def _fail(code: str, message: str, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False))
    else:
        console.print(f"[red]error[/] {code}: {message}")
    raise typer.Exit(2)
