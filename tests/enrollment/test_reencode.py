"""`bedcheck enroll reencode`: a gallery enrolled with dlib re-embedded from its face chips with sface, without
new photos; resumable after SIGKILL; faces enrolled without a chip listed by person; the bed-check verdicts
then come from sface embeddings and sface's threshold."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from enrollment.analyse import analyse_photo
from models.errors import EngineMismatch
from models.faces.decode import load_image_file
from models.faces.engine import FaceEngine
from models.faces.engines import DLIB, SFACE
from models.faces.match import Embeddings, match
from models.settings import EngineSettings
from server.cli import app
from server.db import make_engine, upgrade
from server.hospitals import service as hospitals
from server.hospitals.tables import HospitalKind
from server.persons.face_index import FaceIndex
from server.persons.service import add_embedding, add_staff_embedding, enrolled_vectors, get_or_create_person
from server.persons.tables import FaceEmbedding
from tests.enrollment.killing import sigkill_part_way

PEOPLE = ("colin_powell", "tony_blair", "hugo_chavez")
runner = CliRunner()


def _dlib_gallery(engine, faces_dir: Path) -> dict[str, int]:
    """Three people enrolled with dlib from two photos each (chips kept), a person enrolled before chips were
    kept, and a nurse in the staff gallery (chip kept). Returns person ids by name."""
    dlib = FaceEngine(EngineSettings(engine="dlib"))
    ids = {}
    with Session(engine) as db:
        for name in PEOPLE:
            person, _ = get_or_create_person(db, insurance_number=f"X-{name}", name=name)
            ids[name] = person.id or 0
            for photo in ("01.jpg", "02.jpg"):
                analysis = analyse_photo((faces_dir / "people" / name / photo).read_bytes(), dlib)
                assert analysis.accepted and analysis.engine_version == DLIB.tag, analysis.code
                add_embedding(db, person_id=person.id or 0, vector=analysis.encoding, source="test",
                              engine_version=analysis.engine_version, thumbnail_jpeg=analysis.thumbnail_jpeg,
                              chip_jpeg=analysis.chip_jpeg)
        legacy, _ = get_or_create_person(db, insurance_number="X-legacy", name="old")
        add_embedding(db, person_id=legacy.id or 0, vector=np.ones(128) / np.sqrt(128), source="test",
                      engine_version=DLIB.tag)  # no chip: enrolled before chips were kept
        county = hospitals.get_or_create_county(db, province="P", city="C", county="K")
        hospital = hospitals.upsert_hospital(db, code="H1", name="H1", county_id=county.id or 0,
                                             kind=HospitalKind.PUBLIC)
        nurse = analyse_photo((faces_dir / "people" / "george_w_bush" / "01.jpg").read_bytes(), dlib)
        add_staff_embedding(db, hospital_id=hospital.id or 0, staff_number="N-1", name="nurse", vector=nurse.encoding,
                            source="test", engine_version=DLIB.tag, thumbnail_jpeg=nurse.thumbnail_jpeg,
                            chip_jpeg=nurse.chip_jpeg)
        db.commit()
    return ids


def _reencode(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["enroll", "reencode", "--engine", "sface", "--json", "--quiet", "--workers", "1",
                                 *args], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):])


@pytest.mark.faces
def test_reencode_moves_the_gallery_to_sface_and_the_verdicts_follow(db_url, faces_dir, tmp_path) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    ids = _dlib_gallery(engine, faces_dir)
    env = {"BEDCHECK_DATABASE_URL": db_url, "BEDCHECK_DATA_DIR": str(tmp_path)}
    summary = _reencode(env, "--rejects", str(tmp_path / "rejects.csv"))
    assert summary["engine_version"] == SFACE.tag
    assert summary["reencoded"] == 7 and summary["rejected"] == 0 and summary["without_chip"] == 1
    assert summary["needs_new_photos"] == [{"kind": "insured_person", "number": "X-legacy", "faces": "1"}]
    with (tmp_path / "rejects.csv").open(encoding="utf-8") as handle:
        assert [(r["number"], r["code"]) for r in csv.DictReader(handle)] == [("X-legacy", "no_face_chip")]
    assert summary["index_embeddings"] == 6  # insured persons' sface faces; the staff gallery has no index
    assert len(FaceIndex.read(tmp_path / "face_index.sface.bin")) == 6

    # A rerun finds everything done and adds nothing.
    again = _reencode(env)
    assert again["reencoded"] == 0 and again["already_done"] == 7

    # The bed check now judges an sface probe against sface embeddings, with sface's threshold: the patient
    # matches, the two others do not; a dlib gallery is never compared with it.
    sface = FaceEngine(EngineSettings(engine="sface"))
    with Session(engine) as db:
        galleries = enrolled_vectors(db, list(ids.values()), engine=SFACE.tag)
        dlib_galleries = enrolled_vectors(db, list(ids.values()), engine=DLIB.tag)
        copies = db.exec(select(FaceEmbedding).where(FaceEmbedding.engine_version == SFACE.tag)).all()
        assert all(c.reencoded_from_id and c.chip_jpeg is None and c.thumbnail_jpeg for c in copies)
        assert db.exec(select(func.count()).select_from(FaceEmbedding)
                       .where(col(FaceEmbedding.staff_member_id).is_not(None))).one() == 2  # nurse: dlib + sface
    for name, person_id in ids.items():
        probe = sface.encode_largest(load_image_file(faces_dir / "people" / name / "05.jpg", sface.settings))
        assert probe is not None
        tagged = Embeddings.of(SFACE.tag, probe)
        for other, other_id in ids.items():
            decided = match(galleries[other_id], tagged, SFACE.match)
            assert decided.is_match == (other == name), (name, other, decided.distance)
        with pytest.raises(EngineMismatch):
            match(dlib_galleries[person_id], tagged, DLIB.match)
    engine.dispose()


def _sface_rows(engine) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as db:
        return db.exec(select(func.count()).select_from(FaceEmbedding)
                       .where(FaceEmbedding.engine_version == SFACE.tag)).one()


@pytest.mark.faces
@pytest.mark.slow
def test_reencode_killed_mid_run_resumes_and_re_embeds_each_face_exactly_once(faces_dir, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'bedcheck.db'}"
    env = {**os.environ, "BEDCHECK_DATABASE_URL": url, "BEDCHECK_DATA_DIR": str(tmp_path),
           "BEDCHECK_ENGINE_ENGINE": "dlib"}
    # The whole people/ folder enrolled with dlib, as a county enrolled before the change of engine.
    subprocess.run([sys.executable, "-m", "server.cli", "enroll", "--photos", str(faces_dir / "people"),
                    "--layout", "folders", "--quiet", "--rejects", str(tmp_path / "enroll_rejects.csv")],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
    engine = make_engine(url)
    with Session(engine) as db:
        origins = db.exec(select(func.count()).select_from(FaceEmbedding)
                          .where(col(FaceEmbedding.chip_jpeg).is_not(None))).one()
    assert origins >= 90
    command = [sys.executable, "-m", "server.cli", "enroll", "reencode", "--engine", "sface", "--quiet",
               "--workers", "1", "--rejects", str(tmp_path / "rejects.csv")]
    sigkill_part_way(command, env, lambda: _sface_rows(engine), at_least=5, poll_s=0.02)
    partial = _sface_rows(engine)
    assert 5 <= partial < origins

    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    with Session(engine) as db:
        sources = db.exec(select(FaceEmbedding.reencoded_from_id)
                          .where(FaceEmbedding.engine_version == SFACE.tag)).all()
    assert len(sources) == len(set(sources)) == origins  # every chip once, none twice
    assert len(FaceIndex.read(tmp_path / "face_index.sface.bin")) == origins
    engine.dispose()
