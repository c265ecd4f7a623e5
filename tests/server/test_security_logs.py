"""Privacy in logs, on a real server on loopback: a failed insert logs its statement, never its values (a
patient's name and insurance number here; a nurse's note, a liveness report or embedding bytes elsewhere)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from server.accounts.tables import Role
from server.hospitals.tables import Hospital
from tests import factories

NAME, NUMBER = "王秘密", "SECRET-INS-777"

TRIGGERS = {
    "sqlite": ["CREATE TRIGGER refuse_person BEFORE INSERT ON insured_person "
               "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
    "postgresql": ["CREATE FUNCTION refuse_person() RETURNS trigger AS $$ BEGIN "
                   "RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql",
                   "CREATE TRIGGER refuse_person BEFORE INSERT ON insured_person "
                   "FOR EACH ROW EXECUTE FUNCTION refuse_person()"],
}


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # with the traceback, as a log file would hold it


@pytest.fixture
def logged() -> Iterator[_Lines]:
    handler = _Lines()
    # The root logger and uvicorn's (which does not propagate): everything a deployment would write.
    loggers = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("sqlalchemy")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


def test_a_failed_insert_logs_the_statement_but_not_its_values(engine, live_server, logged) -> None:
    with Session(engine) as db:
        world = factories.build_world(db, hospitals_n=1, patients_per_ward=["a"])
        factories.user(db, "sup", Role.SUPERVISOR)
        code = db.exec(select(Hospital.code)).one()
    server = live_server()
    with engine.begin() as connection:  # every insert of a person now fails inside the database
        for statement in TRIGGERS[engine.dialect.name]:
            connection.execute(text(statement))
    row = f"{code},W1,07,{NUMBER},{NAME},SECRET-ADM-1,2026-12-01T08:00:00,"
    body = ("hospital_code,ward_code,bed_label,insurance_number,name,his_admission_no,admitted_at,discharged_at\n"
            f"{row}\n").encode()
    with closing(httpx.Client(base_url=server.url, timeout=60)) as client:
        token = client.post("/api/v1/auth/token", json={"username": "sup", "password": factories.PASSWORD}).json()
        client.headers["authorization"] = f"Bearer {token['access_token']}"
        failed = client.post("/api/v1/roster/import", params={"create_beds": "true"},
                             files={"file": ("his.csv", body, "text/csv")})
    assert failed.status_code == 500 and NAME not in failed.text and NUMBER not in failed.text
    log = "\n".join(logged.lines)
    assert "INSERT INTO insured_person" in log and "hide_parameters" in log  # the statement is there
    assert NUMBER not in log and NAME not in log and "SECRET-ADM-1" not in log
    assert world.hospital_ids
