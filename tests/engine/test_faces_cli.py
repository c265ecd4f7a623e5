"""`bedcheck faces ...` commands, run through the real typer app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from server.cli import app

runner = CliRunner()


@pytest.fixture
def lfw_layout(faces_dir: Path, tmp_path: Path) -> Path:
    """people/ images linked (not copied) into LFW's <name>/<name>_NNNN.jpg layout, with a pairs file."""
    images = tmp_path / "images"
    names = ["george_w_bush", "colin_powell", "tony_blair"]
    for name in names:
        (images / name).mkdir(parents=True)
        for i in range(1, 4):
            (images / name / f"{name}_{i:04d}.jpg").symlink_to(faces_dir / "people" / name / f"{i:02d}.jpg")
    lines = ["1\t6"]
    lines += [f"{n}\t1\t2" for n in names]
    lines += [f"{a}\t1\t{b}\t3" for a, b in zip(names, names[1:] + names[:1], strict=True)]
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


@pytest.mark.faces
def test_check_reports_each_image_and_fails_when_any_fails(faces_dir: Path) -> None:
    good = faces_dir / "people" / "george_w_bush" / "01.jpg"
    bad = faces_dir / "bad" / "multi_face_two_people.jpg"
    result = runner.invoke(app, ["faces", "check", str(good), str(bad)])
    lines = result.stdout.strip().splitlines()
    assert result.exit_code == 1
    assert lines[0].split("\t")[1] == "ok" and lines[1].split("\t")[1] == "multiple_faces"
    assert runner.invoke(app, ["faces", "check", str(good)]).exit_code == 0


@pytest.mark.faces
def test_compare_says_same_for_one_person_and_different_for_two(faces_dir: Path) -> None:
    blair, chavez = faces_dir / "people" / "tony_blair", faces_dir / "people" / "hugo_chavez"
    same = runner.invoke(app, ["faces", "compare", str(blair / "01.jpg"), str(blair / "02.jpg")])
    diff = runner.invoke(app, ["faces", "compare", str(blair / "01.jpg"), str(chavez / "01.jpg")])
    assert same.stdout.strip().endswith("same") and diff.stdout.strip().endswith("different")


@pytest.mark.faces
def test_eval_json_has_a_record_per_pair_and_rates(lfw_layout: Path) -> None:
    result = runner.invoke(app, ["faces", "eval", "--pairs", str(lfw_layout / "pairs.txt"),
                                 "--images", str(lfw_layout / "images"), "--json", "--workers", "1",
                                 "--plot", str(lfw_layout / "roc.png")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["pairs"]) == 6
    assert all(r["distance"] is not None and "decision" in r for r in report["pairs"])
    assert report["configured"]["accuracy"] == 1.0 and report["configured"]["false_accept_rate"] == 0.0
    assert (lfw_layout / "roc.png").stat().st_size > 1000


@pytest.mark.faces
def test_calibrate_writes_a_threshold_the_engine_then_reads(lfw_layout: Path, monkeypatch) -> None:
    from models.settings import EngineSettings

    out = lfw_layout / "engine.env"
    result = runner.invoke(app, ["faces", "calibrate", "--pairs", str(lfw_layout / "pairs.txt"),
                                 "--images", str(lfw_layout / "images"), "--target-far", "0.0",
                                 "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    written = float(out.read_text().split("=")[1])
    assert EngineSettings.load(env_file=out).match_threshold == pytest.approx(written)


def test_malformed_pairs_file_is_reported_with_its_line(tmp_path: Path) -> None:
    from models.errors import InvalidInput
    from models.faces.evaluation import read_pairs

    bad = tmp_path / "pairs.txt"
    bad.write_text("2\t300\nAbel_Pacheco\t1\t4\nthis line is wrong\n")
    with pytest.raises(InvalidInput, match="line 3"):
        read_pairs(bad)


@pytest.mark.faces
@pytest.mark.parametrize("engine", ["sface", "dlib"])
def test_eval_runs_each_engine_and_says_which(lfw_layout: Path, engine: str) -> None:
    result = runner.invoke(app, ["faces", "eval", "--pairs", str(lfw_layout / "pairs.txt"), "--engine", engine,
                                 "--images", str(lfw_layout / "images"), "--json", "--workers", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["engine"] == engine and report["configured"]["accuracy"] == 1.0
    if engine == "sface":
        assert report["configured"]["accuracy"] == 1.0
    # dlib's threshold is fitted to East-Asian templates (0.37, docs/benchmarks.md): strict on single LFW photos.


@pytest.mark.faces
def test_calibrate_fits_one_engine_on_a_sites_own_csv_pairs_and_leaves_the_other(lfw_layout: Path) -> None:
    from models.faces.engines import SFACE
    from models.settings import EngineSettings

    site = lfw_layout / "site_pairs.csv"  # a bureau's own labelled pairs, paths relative to --images
    site.write_text("left,right,same\n" + "".join(
        f"{a}/{a}_0001.jpg,{b}/{b}_000{2 if a == b else 3}.jpg,{'yes' if a == b else 'no'}\n"
        for a, b in [("george_w_bush",) * 2, ("tony_blair",) * 2, ("george_w_bush", "tony_blair"),
                     ("colin_powell", "george_w_bush")]))
    out = lfw_layout / "engine.env"
    out.write_text("BEDCHECK_ENGINE_SFACE_MATCH_THRESHOLD=1.05\n")
    result = runner.invoke(app, ["faces", "calibrate", "--pairs", str(site), "--images", str(lfw_layout / "images"),
                                 "--engine", "dlib", "--target-far", "0.0", "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    written = dict(line.split("=") for line in out.read_text().split())
    settings = EngineSettings.load(env_file=out)
    assert settings.profile_of("dlib").match == pytest.approx(float(written["BEDCHECK_ENGINE_DLIB_MATCH_THRESHOLD"]))
    assert settings.profile_of("sface").match == 1.05 != SFACE.match  # the other engine's calibration is kept


def test_a_calibration_file_from_before_two_engines_still_loads_as_dlibs(tmp_path: Path) -> None:
    from models.faces.engines import SFACE
    from models.settings import EngineSettings

    legacy = tmp_path / "engine.env"
    legacy.write_text("BEDCHECK_ENGINE_MATCH_THRESHOLD=0.55\n")  # what `faces calibrate` wrote before
    settings = EngineSettings.load(env_file=legacy)
    assert settings.profile_of("dlib").match == 0.55 and settings.profile_of("sface").match == SFACE.match


@pytest.fixture
def identities_layout(faces_dir: Path, tmp_path: Path) -> Path:
    """Four people/ identities of five images each under DIR/images/<id>/<id>_000N.jpg (asian_dev's layout), and
    one identity whose only image holds no face."""
    images = tmp_path / "site" / "images"
    for name in ["george_w_bush", "colin_powell", "tony_blair", "hugo_chavez"]:
        (images / name).mkdir(parents=True)
        for i in range(1, 6):
            (images / name / f"{name}_{i:04d}.jpg").symlink_to(faces_dir / "people" / name / f"{i:02d}.jpg")
    (images / "dogs").mkdir()
    (images / "dogs" / "dogs_0001.jpg").symlink_to(faces_dir / "bad" / "no_face_dogs.jpg")
    return tmp_path / "site"


@pytest.mark.faces
def test_eval_templates_compares_every_template_with_every_probe_and_counts_missing_faces(
        identities_layout: Path) -> None:
    result = runner.invoke(app, ["faces", "eval", "--protocol", "templates", "--enroll", "2", "--probe", "3",
                                 "--draws", "3", "--json", "--workers", "1", str(identities_layout)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["identities"] == 5 and report["images"] == 21 and report["images_without_face"] == 1
    part = report["templates"]
    # Four templates (the faceless identity has too few images) against five probes, three draws.
    assert (part["templates_per_draw"], part["probes_per_draw"]) == (4, 5)
    assert part["probe_images_mean"] == 3.0
    shipped = part["shipped"]
    assert shipped["genuine"] == 4 * 3 and shipped["impostor"] == 4 * 4 * 3
    assert shipped["true_accept_rate"] == 1.0
    # The faceless probe is an error against every template: counted as accepted, never skipped.
    assert shipped["faces_not_found"] == 4 * 3
    assert shipped["false_accept_rate"] == pytest.approx(12 / 48)
    assert [p["target_far"] for p in part["at_far"]] == [0.01, 0.001, 0.0001]
    assert report["one_to_one"]["enroll"] == 1 and report["one_to_one"]["probe"] == 1
    text = runner.invoke(app, ["faces", "eval", "--protocol", "templates", "--draws", "1", "--workers", "1",
                               str(identities_layout)])
    assert text.exit_code == 0 and "TAR at FAR 0.10%" in text.stdout


@pytest.mark.faces
def test_calibrate_on_templates_writes_a_threshold_that_keeps_strangers_out(identities_layout: Path) -> None:
    import shutil

    from models.settings import EngineSettings

    shutil.rmtree(identities_layout / "images" / "dogs")
    out = identities_layout / "engine.env"
    result = runner.invoke(app, ["faces", "calibrate", "--protocol", "templates", "--target-far", "0.0",
                                 "--draws", "3", "--out", str(out), "--workers", "1", str(identities_layout)])
    assert result.exit_code == 0, result.output
    threshold = EngineSettings.load(env_file=out).match_threshold
    report = json.loads(runner.invoke(app, ["faces", "eval", "--protocol", "templates", "--draws", "3", "--json",
                                            "--workers", "1", str(identities_layout)]).stdout)
    assert report["templates"]["genuine_median"] < threshold < report["templates"]["impostor_mean"]


def test_eval_templates_needs_a_folder_of_identities(tmp_path: Path) -> None:
    result = runner.invoke(app, ["faces", "eval", "--protocol", "templates", str(tmp_path)])
    assert result.exit_code == 2 and "no identity folders" in " ".join(result.output.split())
    assert runner.invoke(app, ["faces", "eval", "--protocol", "templates"]).exit_code == 2
