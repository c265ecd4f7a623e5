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
    """An engine tuned per backend: SQLite with WAL, foreign keys and a busy timeout; PostgreSQL pooled."""
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and ":memory:" not in url:
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=20, max_overflow=40)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


class WriteGate:
    """Serialises write transactions on SQLite, across threads and across server processes.

    SQLite allows one writer; writers that collide wait in its busy handler, which sleeps in growing steps
    (up to 100 ms), so a burst of uploads crawls. Queuing on a lock (a thread lock, then an flock on a
    file beside the database for other worker processes) keeps the single writer busy instead.
    PostgreSQL needs no gate.
    """

    def __init__(self, engine: Engine) -> None:
        import threading

        self._lock = threading.Lock() if engine.dialect.name == "sqlite" else None
        database = engine.url.database
        self._lock_path = f"{database}.writelock" if self._lock and database and database != ":memory:" else None
        self._fd: int | None = None

    def __enter__(self) -> None:
        if self._lock is None:
            return
        self._lock.acquire()
        if self._lock_path:
            import fcntl
            import os

            if self._fd is None:
                self._fd = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self._lock is None:
            return
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._lock.release()


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
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        yield session


Db = Annotated[Session, Depends(get_db)]
