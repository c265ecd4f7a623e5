"""Roster import: malformed rows rejected with line numbers, the rest imported, a re-import changes nothing."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select

from server.admissions import roster
from server.admissions.tables import Admission
from server.hospitals import registry
from server.hospitals import service as hospitals
from server.hospitals.tables import HospitalKind
from server.persons.tables import InsuredPerson

HEADER = "hospital_code,ward_code,bed_label,insurance_number,name,his_admission_no,admitted_at,discharged_at\n"
GOOD = [
    "H1,W1,01,INS001,张三,A001,2026-11-01T08:00:00,",
    "H1,W1,02,INS002,李四,A002,2026-11-02T09:30:00+08:00,",
    "H1,W2,01,INS003,王五,A003,2026-11-03 10:00:00,",
]
BAD = [
    "H9,W1,03,INS004,赵六,A004,2026-11-01T08:00:00,",          # unknown hospital
    "H1,W1,04,,钱七,A005,2026-11-01T08:00:00,",                 # missing insurance number
    "H1,W1,05,INS006,孙八,A006,yesterday,",                     # bad date
    "H1,W1,06,INS007,周九,A007,2026-11-05T08:00:00,2026-11-01T08:00:00",  # discharged before admitted
    "H1,W1,01,INS008,吴十,A008,2026-11-01T08:00:00,",           # bed 01 already occupied
    "H1,W1,07,INS001,张三,A001,2026-11-01T08:00:00,",           # duplicate of line 2 in the file
]


def _csv(lines: list[str]) -> bytes:
    return (HEADER + "\n".join(lines) + "\n").encode()


def _setup(db: Session) -> None:
    county = hospitals.get_or_create_county(db, province="P", city="C", county="K")
    hospitals.upsert_hospital(db, code="H1", name="One", county_id=county.id or 0, kind=HospitalKind.PUBLIC)
    db.commit()
    beds = "hospital_code,ward_code,bed_label\n" + "".join(f"H1,{w},0{b}\n" for w in ("W1", "W2") for b in range(1, 10))
    registry.import_beds(db, rows=registry.parse_beds(beds.encode()), actor="test")


def _state(db: Session) -> list[tuple]:
    return sorted((a.his_admission_no, a.bed_id, a.ward_id, a.insured_person_id, a.admitted_at, a.discharged_at)
                  for a in db.exec(select(Admission)))


def test_malformed_rows_are_rejected_with_line_numbers_and_the_rest_imported(db: Session) -> None:
    _setup(db)
    report = roster.import_roster(db, rows=roster.parse_rows(_csv(GOOD + BAD), "his.csv"), actor="test")
    assert report.created == 3
    assert [r.line for r in report.rejected] == [5, 6, 7, 8, 9, 10]
    messages = [r.message for r in report.rejected]
    assert "unknown hospital" in messages[0] and "insurance_number" in messages[1]
    assert "ISO" in messages[2] and "before" in messages[3] and "occupied" in messages[4]
    assert "duplicate of line 2" in messages[5]
    assert db.exec(select(func.count()).select_from(Admission)).one() == 3


def test_reimport_changes_nothing(db: Session) -> None:
    _setup(db)
    roster.import_roster(db, rows=roster.parse_rows(_csv(GOOD), "his.csv"), actor="test")
    before = _state(db)
    report = roster.import_roster(db, rows=roster.parse_rows(_csv(GOOD + BAD), "his.csv"), actor="test")
    assert (report.created, report.updated, report.unchanged) == (0, 0, 3)
    assert _state(db) == before
    assert db.exec(select(func.count()).select_from(InsuredPerson)).one() == 3


def test_discharge_and_transfer_update_the_admission(db: Session) -> None:
    _setup(db)
    roster.import_roster(db, rows=roster.parse_rows(_csv(GOOD), "his.csv"), actor="test")
    moved = ["H1,W2,09,INS001,张三,A001,2026-11-01T08:00:00,",
             "H1,W1,02,INS002,李四,A002,2026-11-02T09:30:00+08:00,2026-11-20T12:00:00+08:00"]
    report = roster.import_roster(db, rows=roster.parse_rows(_csv(moved), "his.csv"), actor="test")
    assert (report.transferred, report.discharged) == (1, 1)
    a1 = db.exec(select(Admission).where(Admission.his_admission_no == "A001")).one()
    a2 = db.exec(select(Admission).where(Admission.his_admission_no == "A002")).one()
    assert a2.discharged_at is not None and a2.discharged_at.hour == 4  # 12:00 +08:00 stored as UTC
    assert a1.discharged_at is None


def test_json_roster_and_malformed_json_report_clearly(db: Session) -> None:
    import pytest

    from models.errors import InvalidInput

    _setup(db)
    rows = roster.parse_rows(b'[{"hospital_code": "H1", "ward_code": "W1", "bed_label": "01", '
                             b'"insurance_number": "J1", "name": "x", "his_admission_no": "J1", '
                             b'"admitted_at": "2026-11-01T00:00:00"}, "not an object"]', "his.json")
    report = roster.import_roster(db, rows=rows, actor="test")
    assert report.created == 1 and [r.line for r in report.rejected] == [2]
    with pytest.raises(InvalidInput, match="line"):
        roster.parse_rows(b'[{"a": 1},', "his.json")
    with pytest.raises(InvalidInput, match="lacks columns"):
        roster.parse_rows(b"name,bed\nx,1\n", "his.csv")


@pytest.mark.parametrize("data", [b"insurance_number,name\r\n\"a\rb", b"a,b\n\"unterminated\x00,x\n", b"x\ry,z\n1,2\n"])
def test_malformed_csv_is_a_clear_error_not_a_crash(data: bytes) -> None:
    from models.errors import InvalidInput
    from server.admissions.roster import parse_rows

    try:
        parse_rows(data, "roster.csv")
    except InvalidInput as e:
        assert "roster CSV" in e.message
