"""Database engine, sessions and migrations, on SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import DateTime, event
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, create_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both engines (SQLite stores no zone and hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def snake_case(name: str) -> str:
    """Table name from a class name: CheckTask -> check_task (SQLModel's default would be checktask)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def make_engine(url: str) -> Engine:
    """An engine tuned per backend: SQLite with WAL, foreign keys and a busy timeout; PostgreSQL pooled.

    `hide_parameters`: a failed statement's error (and so any log of it) names the statement, never its
    values: those are a nurse's note, an idempotency key, a liveness report or an embedding's raw bytes.
    """
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=20, max_overflow=40, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True, hide_parameters=True)


class FairLock:
    """A lock handed out in arrival order (tickets). A plain Lock lets the thread that releases it take it
    straight back: a roster import committing chunk after chunk would starve every device's upload."""

    def __init__(self) -> None:
        import threading

        self._cond = threading.Condition(threading.Lock())
        self._next = self._serving = 0

    def acquire(self) -> None:
        with self._cond:
            ticket, self._next = self._next, self._next + 1
            while ticket != self._serving:
                self._cond.wait()

    def release(self) -> None:
        """May run on another thread than `acquire` (a request's teardown)."""
        with self._cond:
            self._serving += 1
            self._cond.notify_all()

    def locked(self) -> bool:
        with self._cond:
            return self._serving != self._next


class WriteGate:
    """Serialises write transactions on SQLite, across threads and across server processes.

    SQLite allows one writer; writers that collide wait in its busy handler, which sleeps in growing steps
    (up to 100 ms), so a burst of uploads crawls. Queuing on a lock (a thread lock, then an flock on a
    file beside the database for other worker processes) keeps the single writer busy instead.
    PostgreSQL needs no gate. Request sessions take it by themselves (`gated_session`); jobs hold it
    around their write transaction (`with gate:`).
    """

    def __init__(self, engine: Engine) -> None:
        self._lock = FairLock() if engine.dialect.name == "sqlite" else None
        database = engine.url.database
        self._lock_path = f"{database}.writelock" if self._lock and database and database != ":memory:" else None
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._lock is None:
            return
        self._lock.acquire()
        if self._lock_path:
            import fcntl
            import os

            if self._fd is None:
                self._fd = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        if self._lock is None:
            return
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


_GATE, _HELD = "write_gate", "write_gate_held"


def gated_session(engine: Engine, gate: WriteGate) -> Session:
    """A session whose write transactions run under `gate`: taken at the first write, released when the
    transaction ends (commit, rollback or close). Reads never wait for it, so a long-poll or a face
    encoding in the same request holds no lock; Python's sqlite3 begins SQLite's own transaction at the
    first write statement too, so no read snapshot has to be upgraded."""
    session = Session(engine, expire_on_commit=False)
    session.info[_GATE] = gate
    return session


def claim_write(session: Session) -> None:
    """Takes the session's write gate now (no-op without one, or when held): for a use case that must
    read under the lock what it is about to change (the audit chain's head, a flag's status)."""
    gate = session.info.get(_GATE)
    if gate is None or session.info.get(_HELD):
        return
    if not session.in_transaction():
        session.begin()  # so that the end of this transaction releases the gate
    gate.acquire()
    session.info[_HELD] = True


@event.listens_for(Session, "before_flush")
def _claim_before_flush(session: Session, _context: Any, _instances: Any) -> None:
    claim_write(session)


@event.listens_for(Session, "do_orm_execute")
def _claim_before_statement(state: Any) -> None:
    if not state.is_select:
        claim_write(state.session)


@event.listens_for(Session, "after_transaction_create")
def _claim_for_savepoint(session: Session, transaction: Any) -> None:
    # A SAVEPOINT opens SQLite's transaction before any write: reads inside it would pin a snapshot that a
    # writer could move on, and the first write would then fail at once ("database is locked"). So a
    # savepoint is a write from its start.
    if transaction.nested:
        claim_write(session)


@event.listens_for(Session, "after_transaction_end")
def _release_after_transaction(session: Session, transaction: Any) -> None:
    if transaction.parent is None and session.info.pop(_HELD, False):
        session.info[_GATE].release()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (alembic, run in code so an installed package migrates)."""
    from alembic import command

    with engine.begin() as connection:
        config = alembic_config(str(engine.url))
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@contextmanager
def db_scope(engine: Engine) -> Iterator[Session]:
    """A session for jobs and the CLI: commit at the end, roll back on error."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def get_db(request: Request) -> Iterator[Session]:
    """The request's session; its writes take the SQLite write gate by themselves (`gated_session`)."""
    with gated_session(request.app.state.engine, request.app.state.write_gate) as session:
        yield session


Db = Annotated[Session, Depends(get_db)]
