"""`bedcheck-edge` commands against a real server: pairing errors, a nurse's one-off check of a bed
(an ad hoc task), status."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from edge_client.cli import app
from server.campaigns.tables import CheckTask
from tests.edge.conftest import build_ward, image_folder, pairing_code

runner = CliRunner()


def test_pairing_with_a_wrong_code_fails_with_the_reason(live_server, tmp_path) -> None:
    server = live_server()
    result = runner.invoke(app, ["pair", "--server", server.url, "--code", "WRONGCODE1",
                                 "--state-dir", str(tmp_path)])
    assert result.exit_code == 1 and "pairing_code_invalid" in result.output
    assert not (tmp_path / "credentials.json").exists()


def test_commands_before_pairing_say_how_to_pair(tmp_path) -> None:
    result = runner.invoke(app, ["status", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2 and "bedcheck-edge pair" in result.output


def test_bad_setting_names_the_variable(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BEDCHECK_EDGE_BURST_FRAMES", "0")
    result = runner.invoke(app, ["status", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2 and "BEDCHECK_EDGE_BURST_FRAMES" in result.output


@pytest.mark.faces
def test_nurse_checks_one_bed_now_and_the_server_verifies_it(faces_dir, enroll, engine, live_server,
                                                             tmp_path) -> None:
    ward = build_ward(engine, {"a": enroll("people/george_w_bush"), "b": enroll("people/tony_blair")},
                      spot_check=False)
    server = live_server()
    state = ["--state-dir", str(tmp_path / "edge")]
    paired = runner.invoke(app, ["pair", "--server", server.url, "--code", pairing_code(engine, ward.ward_id),
                                 *state])
    assert paired.exit_code == 0, paired.output
    folder = image_folder(tmp_path, "frames", sorted((faces_dir / "people/george_w_bush").glob("*"))[5:9])

    checked = runner.invoke(app, ["check", "--bed", ward.bed_labels["a"], "--source", folder, *state])
    assert checked.exit_code == 0, checked.output
    assert "verified" in checked.output and "uploaded 1 result(s)" in checked.output
    with Session(engine) as db:
        [task] = db.exec(select(CheckTask)).all()  # the ad hoc task the device asked for
        assert task.verdict.value == "verified"

    again = runner.invoke(app, ["check", "--bed", "99", "--source", folder, *state])
    assert again.exit_code == 1 and "not on this ward's roster" in again.output
    status = json.loads(runner.invoke(app, ["status", *state]).output)
    assert status["outbox"]["sent"] == 1 and status["clock_offset_ms"] is not None
