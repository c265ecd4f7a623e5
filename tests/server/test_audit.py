"""`bedcheck audit verify`: passes untouched, fails naming the record after any single row is edited or deleted."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import Session
from typer.testing import CliRunner

from server.audit import service as audit
from server.cli import app


@pytest.fixture
def cli_env(db_url: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BEDCHECK_DATABASE_URL", db_url)
    monkeypatch.setenv("BEDCHECK_DATA_DIR", str(tmp_path))


def _chain(db: Session, n: int = 5, *, checkpoint: bool = True) -> None:
    for i in range(n):
        audit.record(db, actor="user:1", action="test.action", object_type="thing", object_id=i, data={"i": i})
    db.commit()
    if checkpoint:  # what the server's scheduler does while it runs
        assert CliRunner().invoke(app, ["audit", "checkpoint"]).exit_code == 0


def _verify(db_url: str, monkeypatch) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert "Traceback" not in result.output and (result.exception is None or isinstance(result.exception, SystemExit))
    return result.exit_code, result.stdout


def test_a_chain_without_its_checkpoint_file_fails(db: Session, db_url: str, cli_env, monkeypatch) -> None:
    _chain(db, checkpoint=False)
    code, out = _verify(db_url, monkeypatch)
    assert code == 1 and "检查点文件缺失" in out and "checkpoint file is missing" in out


def test_untouched_chain_verifies(db: Session, db_url: str, cli_env, monkeypatch) -> None:
    _chain(db)
    code, out = _verify(db_url, monkeypatch)
    assert code == 0 and "5 records" in out


@pytest.mark.parametrize("seq", [1, 3, 5])
def test_an_edited_record_is_named(db: Session, db_url: str, cli_env, monkeypatch, seq: int) -> None:
    _chain(db)
    db.execute(text("UPDATE audit_record SET actor = 'someone else' WHERE seq = :seq"), {"seq": seq})
    db.commit()
    code, out = _verify(db_url, monkeypatch)
    assert code == 1 and f"seq={seq}" in out and "edited" in out


@pytest.mark.parametrize("seq", [1, 3])
def test_a_deleted_record_is_named(db: Session, db_url: str, cli_env, monkeypatch, seq: int) -> None:
    _chain(db)
    db.execute(text("DELETE FROM audit_record WHERE seq = :seq"), {"seq": seq})
    db.commit()
    code, out = _verify(db_url, monkeypatch)
    assert code == 1 and f"seq={seq}" in out and "missing" in out
