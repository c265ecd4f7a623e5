"""Crash safety: `bedcheck enroll` killed with SIGKILL mid-run leaves only whole photos (each committed in its own
transaction) and a readable index file; the rerun finishes the rest without enrolling anything twice."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from models.settings import EngineSettings
from server.db import make_engine, upgrade
from server.persons.face_index import FaceIndex, db_fingerprint, load_or_rebuild
from server.persons.tables import FaceEmbedding
from tests.enrollment.killing import sigkill_part_way

PEOPLE = ("colin_powell", "tony_blair", "hugo_chavez")


def _count(engine) -> int:
    with Session(engine) as db:
        return db.exec(select(func.count()).select_from(FaceEmbedding)).one()


@pytest.mark.faces
@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_enrolls_each_photo_exactly_once(faces_dir, tmp_path) -> None:
    roster = tmp_path / "persons.csv"
    roster.write_text("insurance_number,name,photo\n" + "".join(
        f"X-{p},{p},{p}/{i:02d}.jpg\n" for p in PEOPLE for i in range(1, 11)), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'bedcheck.db'}"
    engine = make_engine(url)
    upgrade(engine)
    env = {**os.environ, "BEDCHECK_DATABASE_URL": url, "BEDCHECK_DATA_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "server.cli", "enroll", "--roster", str(roster), "--photos",
               str(faces_dir / "people"), "--quiet", "--rejects", str(tmp_path / "rejects.csv")]
    sigkill_part_way(command, env, lambda: _count(engine), at_least=5, poll_s=0.1)
    partial = _count(engine)
    assert 5 <= partial < 30

    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    with Session(engine) as db:
        rows = db.exec(select(FaceEmbedding.insured_person_id, FaceEmbedding.photo_sha256)).all()
        assert len(rows) == 30 and len(set(rows)) == 30  # every photo once, none twice
        settings = EngineSettings()
        path = tmp_path / f"face_index.{settings.engine.value}.bin"  # one index per engine
        index, how = load_or_rebuild(db, path, engine=settings.engine_tag)
        assert how == "loaded" and index.fingerprint == db_fingerprint(db, engine=settings.engine_tag)
    assert len(FaceIndex.read(path)) == 30
    engine.dispose()
