"""Where jobs come from: roster CSV (photo rows, a photos column, per-person folders), folders, flat files."""

from __future__ import annotations

from pathlib import Path

from enrollment.sources import flat_jobs, folder_jobs, generated_insurance_number, roster_jobs


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_roster_rows_photos_column_and_person_folders_become_jobs_bad_lines_become_rejects(tmp_path) -> None:
    photos = tmp_path / "photos"
    for name in ("a1.jpg", "a2.jpg", "b1.jpg", "b2.png", "B-3/desk.jpg", "B-3/notes.txt"):
        _touch(photos / name)
    roster = tmp_path / "persons.csv"
    roster.write_text(
        "insurance_number,name,photo,photos\n"
        "A-1,Zhang San,a1.jpg,\n"
        "A-1,Zhang San,a2.jpg,\n"
        "B-3,Li Si,,b1.jpg;b2.png\n"
        ",No Number,a1.jpg,\n"
        "C-9,Wang Wu,missing.jpg,\n"
        "D-1,Escape,../persons.csv,\n", encoding="utf-8")
    found = roster_jobs(roster, photos)
    assert [(j.insurance_number, j.path.name) for j in found.jobs] == [
        ("A-1", "a1.jpg"), ("A-1", "a2.jpg"), ("B-3", "b1.jpg"), ("B-3", "b2.png"), ("B-3", "desk.jpg")]
    assert [(r.line, r.code) for r in found.rejects] == [(5, "invalid_input"), (6, "not_found"), (7, "not_found")]


def test_roster_without_insurance_number_column_is_rejected_whole(tmp_path) -> None:
    roster = tmp_path / "persons.csv"
    roster.write_text("id,name\n1,x\n", encoding="utf-8")
    found = roster_jobs(roster, tmp_path)
    assert found.jobs == [] and found.rejects[0].code == "invalid_input"


def test_folder_layout_gives_each_folder_a_stable_generated_insurance_number(tmp_path) -> None:
    photos = tmp_path / "people"
    _touch(photos / "ada_lovelace" / "01.jpg")
    _touch(photos / "ada_lovelace" / "02.jpg")
    _touch(photos / "alan_turing" / "01.jpg")
    jobs = folder_jobs(photos)
    numbers = {j.name: j.insurance_number for j in jobs}
    assert len(jobs) == 3 and set(numbers) == {"ada lovelace", "alan turing"}
    assert numbers["ada lovelace"] == generated_insurance_number(photos, "ada_lovelace")
    assert numbers["ada lovelace"].startswith("AUTO-") and len(numbers["ada lovelace"]) == 17
    assert folder_jobs(photos) == jobs  # deterministic: a rerun maps each folder to the same person


def test_flat_layout_is_one_person_per_file_unless_pairs_say_same_person(tmp_path) -> None:
    for name in ("img1.jpg", "img2.jpg", "img3.jpg", "img4.jpg"):
        _touch(tmp_path / name)
    assert len({j.insurance_number for j in flat_jobs(tmp_path)}) == 4
    pairs = tmp_path / "master.csv"
    pairs.write_text("file_x,file_y,Decision\nimg2.jpg,img3.jpg,Yes\nimg3.jpg,img1.jpg,Yes\nimg1.jpg,img4.jpg,No\n")
    jobs = {j.path.name: j for j in flat_jobs(tmp_path, pairs=pairs)}
    assert jobs["img1.jpg"].insurance_number == jobs["img2.jpg"].insurance_number == jobs["img3.jpg"].insurance_number
    assert jobs["img4.jpg"].insurance_number != jobs["img1.jpg"].insurance_number
    assert jobs["img2.jpg"].name == "img1"
