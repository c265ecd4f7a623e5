"""The must-show: `bedcheck enroll` takes ../shared/faces/people and deepface into the server database end to
end (SQLite and PostgreSQL), rejects every file in bad/ with its reason, and a rerun does nothing new."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func
from sqlmodel import Session, select
from typer.testing import CliRunner

from models.settings import EngineSettings
from models.verdicts import FlagKind
from server.cli import app
from server.db import make_engine
from server.flags.tables import Flag
from server.persons.face_index import FaceIndex
from server.persons.tables import FaceEmbedding, InsuredPerson

BAD_REASONS = {
    "corrupt_truncated.jpg": "image_truncated",
    "empty.jpg": "empty_image",
    "low_res_obama_240p.jpg": "face_too_small",
    "multi_face_group.jpg": "multiple_faces",
    "multi_face_two_people.jpg": "multiple_faces",
    "no_face_cartoon.jpg": "no_face",
    "no_face_cat.png": "no_face",
    "no_face_dogs.jpg": "no_face",
    "not_an_image.jpg": "unsupported_format",
    "partial_obama_left_edge.jpg": "face_at_edge",
    "partial_obama_right_edge.jpg": "face_at_edge",
}


def _enroll(env: dict[str, str], rejects: Path, *args: str) -> dict:
    result = CliRunner().invoke(app, ["enroll", *args, "--rejects", str(rejects), "--quiet", "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):])


def _rejects(path: Path, *, keep_folder: bool = False) -> dict[str, str]:
    with path.open(encoding="utf-8") as handle:
        return {"/".join(Path(row["photo"]).parts[-2:]) if keep_folder else Path(row["photo"]).name: row["code"]
                for row in csv.DictReader(handle)}


def _counts(db: Session) -> tuple[int, int, int]:
    return (db.exec(select(func.count()).select_from(InsuredPerson)).one(),
            db.exec(select(func.count()).select_from(FaceEmbedding)).one(),
            db.exec(select(func.count()).select_from(Flag).where(Flag.kind == FlagKind.DUPLICATE_IDENTITY)).one())


@pytest.mark.faces
@pytest.mark.slow
def test_enroll_people_deepface_and_bad_end_to_end_then_rerun_does_nothing_new(db_url, faces_dir, tmp_path) -> None:
    env = {"BEDCHECK_DATABASE_URL": db_url, "BEDCHECK_DATA_DIR": str(tmp_path)}
    people = _enroll(env, tmp_path / "people.csv", "--photos", str(faces_dir / "people"), "--layout", "folders")
    # The photos each engine refuses (people/ README: ariel_sharon/04, arnold_schwarzenegger/05 and /07 show a
    # second face; YuNet's boxes include the forehead, so it sees those background faces larger than HOG does,
    # and its nose-tip landmark makes arnold_schwarzenegger/01 and /02 just over the frontal gate).
    refused = {"dlib": {"arnold_schwarzenegger/07.jpg": "multiple_faces"},
               "sface": {"ariel_sharon/04.jpg": "multiple_faces", "arnold_schwarzenegger/05.jpg": "multiple_faces",
                         "arnold_schwarzenegger/07.jpg": "multiple_faces",
                         "arnold_schwarzenegger/01.jpg": "face_not_frontal",
                         "arnold_schwarzenegger/02.jpg": "face_not_frontal"}}[EngineSettings().engine.value]
    assert people["persons_created"] == 10 and people["duplicate_flags"] == 0
    assert people["enrolled"] == 100 - len(refused)
    assert _rejects(tmp_path / "people.csv", keep_folder=True) == refused

    deepface = _enroll(env, tmp_path / "deepface.csv", "--photos", str(faces_dir / "deepface"), "--layout", "flat",
                       "--pairs", str(faces_dir / "deepface" / "master.csv"))
    refused = _rejects(tmp_path / "deepface.csv")
    assert refused.get("couple.jpg") == refused.get("selfie-many-people.jpg") == "multiple_faces"
    assert deepface["enrolled"] + deepface["rejected"] == 64 and deepface["enrolled"] >= 55

    bad = _enroll(env, tmp_path / "bad.csv", "--photos", str(faces_dir / "bad"), "--layout", "flat")
    assert bad["enrolled"] == 0
    assert _rejects(tmp_path / "bad.csv") == BAD_REASONS
    assert sorted(BAD_REASONS) == sorted(p.name for p in (faces_dir / "bad").iterdir())

    engine = make_engine(db_url)
    with Session(engine) as db:
        before = _counts(db)
        thumbnails = db.exec(select(FaceEmbedding.thumbnail_jpeg)).all()
    assert before[1] == people["enrolled"] + deepface["enrolled"]
    for jpeg in thumbnails:
        assert max(Image.open(io.BytesIO(jpeg)).size) <= 96 and len(jpeg) < 12_000  # reviewer thumbnail only
    assert len(FaceIndex.read(tmp_path / f"face_index.{EngineSettings().engine.value}.bin")) == before[1]
    assert not (tmp_path / "enrollment_photos").exists()  # full photos dropped by default

    for folder, extra in (("people", ["--layout", "folders"]), ("deepface", ["--layout", "flat", "--pairs",
                          str(faces_dir / "deepface" / "master.csv")]), ("bad", ["--layout", "flat"])):
        rerun = _enroll(env, tmp_path / f"rerun-{folder}.csv", "--photos", str(faces_dir / folder), *extra)
        assert rerun["enrolled"] == rerun["persons_created"] == rerun["duplicate_flags"] == 0
        assert _rejects(tmp_path / f"rerun-{folder}.csv") == _rejects(tmp_path / f"{folder}.csv")
    with Session(engine) as db:
        assert _counts(db) == before
    engine.dispose()


@pytest.mark.faces
def test_roster_enrollment_keeps_full_photos_only_when_the_setting_says_so(db_url, faces_dir, tmp_path) -> None:
    roster = tmp_path / "persons.csv"
    roster.write_text("insurance_number,name,photos\n"
                      "320101-0001,张三,george_w_bush/01.jpg;george_w_bush/02.jpg\n"
                      "320101-0002,李四,colin_powell/01.jpg\n"
                      "320101-0003,王五,nobody/01.jpg\n", encoding="utf-8")
    env = {"BEDCHECK_DATABASE_URL": db_url, "BEDCHECK_DATA_DIR": str(tmp_path), "BEDCHECK_KEEP_FULL_PHOTOS": "true"}
    summary = _enroll(env, tmp_path / "rejects.csv", "--roster", str(roster), "--photos", str(faces_dir / "people"))
    assert summary["enrolled"] == 3 and summary["persons_created"] == 2 and summary["rejected"] == 1
    assert len(list((tmp_path / "enrollment_photos").rglob("*.img"))) == 3
    engine = make_engine(db_url)
    with Session(engine) as db:
        names = {p.insurance_number: p.name for p in db.exec(select(InsuredPerson))}
    engine.dispose()
    assert names == {"320101-0001": "张三", "320101-0002": "李四"}


def test_rejects_of_a_roster_enrollment_carry_the_roster_line(db_url, tmp_path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "empty.jpg").write_bytes(b"")
    (photos / "notes.jpg").write_bytes(b"this is a text file, not a photo\n")
    roster = tmp_path / "persons.csv"
    roster.write_text("insurance_number,name,photo\n"
                      "320101-0101,张三,empty.jpg\n"
                      "\"320101-0102\",\"李\n四\",notes.jpg\n"  # a quoted name over two lines: line 3-4
                      "320101-0103,王五,missing.jpg\n", encoding="utf-8")
    env = {"BEDCHECK_DATABASE_URL": db_url, "BEDCHECK_DATA_DIR": str(tmp_path)}
    summary = _enroll(env, tmp_path / "rejects.csv", "--roster", str(roster), "--photos", str(photos))
    assert summary["enrolled"] == 0 and summary["rejected"] == 3
    with (tmp_path / "rejects.csv").open(encoding="utf-8") as handle:
        rows = {row["insurance_number"]: (row["line"], row["code"]) for row in csv.DictReader(handle)}
    assert rows == {"320101-0101": ("2", "empty_image"), "320101-0102": ("4", "unsupported_format"),
                    "320101-0103": ("5", "not_found")}


def test_bulk_replacement_without_a_reason_is_a_usage_error_before_anything_is_read(tmp_path) -> None:
    result = CliRunner().invoke(app, ["enroll", "--photos", str(tmp_path), "--layout", "folders", "--replace"],
                                env={"BEDCHECK_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2 and "reason" in result.output and "Traceback" not in result.output
