"""The audit trail against someone who can write the database: truncating the tail or editing a record and
re-chaining every later hash with the published algorithm is named by `bedcheck audit verify`."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from server.accounts.tables import Role
from server.audit.tables import AuditRecord
from server.cli import app
from tests import factories


@pytest.fixture
def audited_server(engine, db_url, live_server, tmp_path, monkeypatch):
    """A default (development) start: its own audit key file; ten audited admin actions; a checkpoint."""
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=1)
        factories.user(db, "sup", Role.SUPERVISOR)
    server = live_server(environment="development", data_dir=tmp_path, run_scheduler=True,
                         audit_checkpoint_interval_s=0.3, roll_call_times="",
                         audit_checkpoint_mirror=tmp_path / "bureau-share")
    with httpx.Client(base_url=server.url) as client:
        token = client.post("/api/v1/auth/token", json={"username": "sup", "password": factories.PASSWORD}).json()
        client.headers["authorization"] = f"Bearer {token['access_token']}"
        for _ in range(10):
            assert client.post("/api/v1/devices/pairing-codes", json={"ward_id": world.ward_ids[0]}).status_code == 200
    with Session(engine) as db:
        last = db.exec(select(AuditRecord.seq).order_by(col(AuditRecord.seq).desc())).first()
    checkpoints = server.app.state.settings.resolved_checkpoint_path
    deadline = time.monotonic() + 20
    while not (checkpoints.exists() and f'"seq": {last}' in checkpoints.read_text()):
        assert time.monotonic() < deadline, "no checkpoint of the head was written"
        time.sleep(0.1)
    server.stop()
    for name, value in {"BEDCHECK_DATABASE_URL": db_url, "BEDCHECK_ENVIRONMENT": "development",
                        "BEDCHECK_DATA_DIR": str(tmp_path),
                        "BEDCHECK_AUDIT_CHECKPOINT_MIRROR": str(tmp_path / "bureau-share")}.items():
        monkeypatch.setenv(name, value)
    return last, checkpoints


def _verify() -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert "Traceback" not in result.output and (result.exception is None or isinstance(result.exception, SystemExit))
    return result.exit_code, result.stdout


def _mirror(checkpoints: Path) -> Path:
    return checkpoints.parent / "bureau-share" / checkpoints.name


def test_every_checkpoint_is_written_to_the_mirror_too(audited_server) -> None:
    _, checkpoints = audited_server
    assert _mirror(checkpoints).read_text() == checkpoints.read_text() != ""


@pytest.mark.parametrize("mirror", [True, False])
def test_a_deleted_checkpoint_file_fails_the_verification(audited_server, monkeypatch, mirror) -> None:
    _, checkpoints = audited_server
    if not mirror:
        monkeypatch.delenv("BEDCHECK_AUDIT_CHECKPOINT_MIRROR")
    checkpoints.unlink()
    code, out = _verify()
    assert code == 1 and "检查点文件缺失" in out and "checkpoint file is missing" in out
    assert "audit verification FAILED" in out


@pytest.mark.parametrize("damage", ["not_utf8", "a_directory"])
def test_an_unreadable_checkpoint_file_fails_the_verification(audited_server, damage) -> None:
    _, checkpoints = audited_server
    checkpoints.unlink()
    if damage == "a_directory":
        checkpoints.mkdir()
    else:
        checkpoints.write_bytes(b"\xff\xfe\x00garbage")
    code, out = _verify()
    assert code == 1 and "无法读取" in out and "cannot be read" in out


def test_a_rolled_back_checkpoint_file_is_older_than_expected(audited_server, engine, monkeypatch) -> None:
    from server.audit import service as audit
    from server.settings import ServerSettings

    last, checkpoints = audited_server
    monkeypatch.delenv("BEDCHECK_AUDIT_CHECKPOINT_MIRROR")  # the machine's own file only
    monkeypatch.setenv("BEDCHECK_AUDIT_CHECKPOINT_MAX_AGE_S", "1")
    before = checkpoints.read_text()
    audit.use_key(engine, ServerSettings().audit_secret)
    with Session(engine) as db:
        for i in range(3):
            audit.record(db, actor="user:1", action="test.later", object_type="thing", object_id=i)
        db.commit()
    assert CliRunner().invoke(app, ["audit", "checkpoint"]).exit_code == 0
    assert _verify()[0] == 0
    with Session(engine) as db:  # the newest records go, and the checkpoint file is put back as it was
        db.execute(text("DELETE FROM audit_record WHERE seq > :seq"), {"seq": last + 1})
        db.commit()
    checkpoints.write_text(before)
    time.sleep(1.2)
    code, out = _verify()
    assert code == 1 and "检查点过旧" in out and "older than expected" in out and f"after seq {last}" in out


def test_the_mirror_names_a_truncation_the_rolled_back_local_file_hides(audited_server, engine) -> None:
    last, checkpoints = audited_server
    with Session(engine) as db:
        db.execute(text("DELETE FROM audit_record WHERE seq > :seq"), {"seq": last - 3})
        db.commit()
    lines = checkpoints.read_text().splitlines()
    checkpoints.write_text("\n".join(line for line in lines if json.loads(line)["seq"] <= last - 3) + "\n")
    code, out = _verify()
    assert code == 1
    assert "tail truncated" in out and "lacks the mirror's checkpoints" in out
    _mirror(checkpoints).unlink()
    code, out = _verify()
    assert code == 1 and "检查点镜像缺失" in out and "mirror is missing" in out


def test_an_untouched_chain_with_checkpoints_verifies(audited_server) -> None:
    code, out = _verify()
    assert code == 0, out
    assert "intact" in out and "checkpoints" in out


def test_deleting_the_last_five_records_is_named_a_truncated_tail(audited_server, engine) -> None:
    last, _ = audited_server
    with Session(engine) as db:
        db.execute(text("DELETE FROM audit_record WHERE seq > :seq"), {"seq": last - 5})
        db.commit()
    code, out = _verify()
    assert code == 1
    assert f"tail truncated: records {last - 4}..{last} missing" in out


def _published_digest(row: dict) -> str:
    """The chain's algorithm as an attacker reads it in the source, without the key (plain SHA-256)."""
    body = {k: row[k] for k in ("seq", "created_at", "actor", "action", "object_type", "object_id", "data",
                                "prev_hash")}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def test_editing_a_record_and_rechaining_every_later_hash_is_named(audited_server, engine) -> None:
    last, _ = audited_server
    with Session(engine) as db:
        rows = list(db.exec(select(AuditRecord).order_by(col(AuditRecord.seq))))
        prev = next(r.hash for r in rows if r.seq == 2)
        for row in rows:
            if row.seq < 3:
                continue
            if row.seq == 3:
                row.actor = "user:999"
            row.prev_hash = prev
            row.hash = prev = _published_digest({**row.model_dump(), "created_at": row.created_at.isoformat()})
            db.add(row)
        db.commit()
    code, out = _verify()
    assert code == 1
    assert "seq=3" in out and "edited" in out
    assert f"seq={last}" in out and "history re-chained" in out


def test_an_edited_checkpoint_file_is_named(audited_server) -> None:
    _, checkpoints = audited_server
    lines = checkpoints.read_text().splitlines()
    forged = json.loads(lines[-1]) | {"seq": 1}
    checkpoints.write_text("\n".join([*lines[:-1], json.dumps(forged)]) + "\n")
    code, out = _verify()
    assert code == 1 and "bad signature" in out


def test_the_checkpoint_command_writes_the_head(db, db_url, tmp_path: Path, monkeypatch) -> None:
    from server.audit import service as audit

    audit.record(db, actor="cli", action="test", object_type="thing", object_id=1)
    db.commit()
    monkeypatch.setenv("BEDCHECK_DATABASE_URL", db_url)
    monkeypatch.setenv("BEDCHECK_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["audit", "checkpoint"])
    assert result.exit_code == 0 and "seq 1" in result.stdout
    from server.settings import ServerSettings

    assert ServerSettings().resolved_checkpoint_path.stat().st_mode & 0o077 == 0
