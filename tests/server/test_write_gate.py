"""Request sessions take the SQLite write gate at their first write and hand it back when the transaction
ends; reads never wait for it (so a long-poll or a face encoding in a request holds no lock)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlmodel import select

from server.audit import service as audit
from server.audit.tables import AuditRecord
from server.db import WriteGate, gated_session, make_engine, upgrade


def _engine(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'gate.db'}")
    upgrade(engine)
    return engine


def test_a_write_waits_for_the_gate_and_a_read_does_not(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    gate = WriteGate(engine)
    done: dict[str, float] = {}

    def write() -> None:
        with gated_session(engine, gate) as db:
            audit.record(db, actor="test", action="gate.test", object_type="test", object_id=1)
            db.commit()
        done["write"] = time.monotonic()

    def read() -> None:
        with gated_session(engine, gate) as db:
            list(db.exec(select(AuditRecord)))
        done["read"] = time.monotonic()

    gate.acquire()  # another writer holds the gate
    held_at = time.monotonic()
    writer, reader = threading.Thread(target=write), threading.Thread(target=read)
    writer.start()
    reader.start()
    reader.join(timeout=5)
    time.sleep(0.3)
    assert "read" in done and "write" not in done
    gate.release()
    writer.join(timeout=5)
    assert done["write"] - held_at >= 0.3
    with gated_session(engine, gate) as db:
        assert len(list(db.exec(select(AuditRecord)))) == 1
    engine.dispose()


def test_the_gate_is_released_on_commit_rollback_and_close(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    gate = WriteGate(engine)
    for end in ("commit", "rollback", "close"):
        db = gated_session(engine, gate)
        audit.record(db, actor="test", action=f"gate.{end}", object_type="test", object_id=1)
        getattr(db, end)()
        if end != "close":
            db.close()
        assert gate._lock is not None and not gate._lock.locked(), end
    engine.dispose()


def test_no_route_takes_the_gate_by_hand() -> None:
    root = Path(__file__).resolve().parents[2]
    offenders = [str(p.relative_to(root)) for pkg in ("server", "enrollment") for p in (root / pkg).rglob("*.py")
                 if "app.state.write_gate:" in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_a_savepoint_holds_the_gate_from_its_start(tmp_path: Path) -> None:
    """Reads inside a savepoint must not pin a snapshot another writer moves on (the import's rows)."""
    engine = _engine(tmp_path)
    gate = WriteGate(engine)
    with gated_session(engine, gate) as db:
        with db.begin_nested():
            assert gate._lock is not None and gate._lock.locked()
            list(db.exec(select(AuditRecord)))
            audit.record(db, actor="test", action="gate.savepoint", object_type="test", object_id=1)
        db.commit()
        assert not gate._lock.locked()
    engine.dispose()
