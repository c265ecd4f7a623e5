"""Admission roster import from a hospital information system (HIS): CSV or JSON rows.

Each row is validated on its own: bad rows are reported with their line number and reason, good rows are
upserted (idempotent on hospital + HIS admission number), so a re-import changes nothing and a partial
file loses nothing already stored. A row with `discharged_at` discharges; a known admission on another bed
is a transfer. Files may be UTF-8 or GBK/GB18030 (server/tabular.py): an undecodable row is one rejected row.

Optional columns carry the person's insurance as the hospital's HIS states it (insurance_status,
insurance_type, insured_from, insured_until) and the fund amounts the HIS reports for the admission
(fund_per_day and fund_total in yuan, fund_total_at). The insurance columns never write the bureau's
registry (server/persons/registry.py: only the bureau's feed does), whoever uploads the file: where they
disagree with the registry's record, the admission gets a `registry_mismatch` flag and the report counts it.
Every imported admission whose person was not insured on the admission date, by the registry, gets an
`ineligible` flag (server/admissions/eligibility.py).

Names pass the one name rule (models/names.py): a bidi override or a control character rejects the row
(`name_refused`), invisible characters are removed and the report lists what was removed, by line.

Wards and beds are a registry of their own (server/hospitals/registry.py): a row for a ward or bed the
registry does not hold is rejected unless the import is asked to create beds (`create_beds`).
Admissions that a row creates, moves or discharges are checked for 叠床 (the same insured person admitted
in another hospital): a new overlap raises its flag, a discharge resolves it.

A hospital's own import (hospital staff: `only_hospital_id`) cannot reach another hospital's patients: a row
that would admit (or re-admit) here, or rename, a person currently admitted in another hospital is refused
(`admitted_elsewhere`) and raises a 叠床 flag instead; the person's name and the other admission stay as
they are. The bureau's imports (administrators, supervisors: every hospital's HIS feed) record both
admissions and flag the overlap, as above.

The work is committed in chunks of `COMMIT_EVERY` rows, each its own write transaction: the write lock is
held for one chunk at a time (and handed out in arrival order), so device uploads and heartbeats interleave
with a 20,000-row import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlmodel import Session, col, select

from models.errors import InvalidInput, NameRefused, ReasonCode
from models.names import clean_name
from models.verdicts import FlagKind
from server.admissions.eligibility import flag_ineligible
from server.admissions.tables import Admission
from server.audit import service as audit
from server.flags import service as flag_service
from server.flags.tables import Flag
from server.hospitals import registry
from server.hospitals import service as hospital_service
from server.hospitals.tables import Hospital
from server.persons import registry as insurance_registry
from server.persons.service import get_or_create_person
from server.persons.tables import InsuredPerson
from server.tabular import CsvRows, RowRejected, decode_text, read_csv

REQUIRED = ("hospital_code", "ward_code", "bed_label", "insurance_number", "name", "his_admission_no",
            "admitted_at")
OPTIONAL = ("discharged_at", "insurance_status", "insurance_type", "insured_from", "insured_until", "fund_per_day",
            "fund_total", "fund_total_at")
MAX_YUAN = Decimal("100000000")
UNKNOWN_BED = "unknown_bed"
ADMITTED_ELSEWHERE = ReasonCode.ADMITTED_ELSEWHERE.value
COMMIT_EVERY = 50


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    discharged: int = 0
    transferred: int = 0
    ineligible: int = 0
    rejected: list[RowRejected] = field(default_factory=list)
    encoding: str = "utf-8"
    duplicate_admission_flags: int = 0
    registry_mismatches: int = 0  # admissions whose HIS insurance disagrees with the registry (flagged)
    cleaned: list[RowRejected] = field(default_factory=list)  # names stored with characters removed, by line

    @property
    def accepted(self) -> int:
        return self.created + self.updated + self.unchanged


def parse_rows(data: bytes, filename: str, *, encoding: str | None = None) -> CsvRows:
    """(line number, row) pairs from CSV (header line 1) or a JSON array (line = index + 1), and the rows
    that could not even be read (undecodable text), each with its line number."""
    head = data.lstrip()[:1]
    if filename.lower().endswith(".json") or head == b"[":
        text, rejected, used = decode_text(data, encoding)
        if rejected:
            raise InvalidInput(f"the roster JSON is not valid {used} text at line {rejected[0].line}")
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidInput(f"the roster JSON is malformed at line {e.lineno}") from e
        if not isinstance(items, list):
            raise InvalidInput("the roster JSON must be an array of rows")
        return CsvRows([(i + 1, item if isinstance(item, dict) else {}) for i, item in enumerate(items)], [], used)
    return read_csv(data, required=REQUIRED, encoding=encoding, what="roster CSV")


def _parse_time(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError as e:
        raise ValueError(f"{name} is not an ISO date-time: {str(value)[:40]!r}") from e
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parse_date(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError as e:
        raise ValueError(f"{name} is not an ISO date: {str(value)[:40]!r}") from e


def _parse_fen(value: Any, name: str) -> int | None:
    """Yuan with at most two decimals -> fen; money is never a float."""
    if value in (None, ""):
        return None
    try:
        yuan = Decimal(str(value).strip())
    except InvalidOperation as e:
        raise ValueError(f"{name} is not an amount in yuan: {str(value)[:40]!r}") from e
    if not yuan.is_finite() or yuan < 0 or yuan > MAX_YUAN or yuan != yuan.quantize(Decimal("0.01")):
        raise ValueError(f"{name} must be 0 to {MAX_YUAN} yuan with at most two decimals: {str(value)[:40]!r}")
    return int(yuan * 100)


class RowRefused(ValueError):
    """A row that cannot be imported, with its stable reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AdmittedElsewhereRow(RowRefused):
    """A hospital's row about a person currently admitted in another hospital (raises a 叠床 flag)."""

    def __init__(self, person_id: int, elsewhere: Admission) -> None:
        super().__init__(ADMITTED_ELSEWHERE, "the insured person is currently admitted in another hospital; "
                                             "the row is refused and a 叠床 flag raised")
        self.person_id, self.elsewhere = person_id, elsewhere


def import_roster(db: Session, *, rows: list[tuple[int, dict[str, Any]]] | CsvRows, actor: str,
                  only_hospital_id: int | None = None, create_beds: bool = False) -> ImportReport:
    """Upserts admissions row by row (each good row in its own savepoint), commits every COMMIT_EVERY rows."""
    parsed = rows if isinstance(rows, CsvRows) else CsvRows(list(rows))
    report = ImportReport(rejected=list(parsed.rejected), encoding=parsed.encoding)
    hospitals = {h.code: h for h in db.exec(select(Hospital))}
    seen: dict[tuple[str, str], int] = {}
    imported: list[int] = []
    changed: list[int] = []
    for done, (line, row) in enumerate(parsed.rows, start=1):
        try:
            values = _validate(row, hospitals, only_hospital_id)
            key = (values["hospital"].code, values["his_admission_no"])
            if key in seen:
                raise ValueError(f"duplicate of line {seen[key]} in this file")
            seen[key] = line
            with db.begin_nested():
                outcome, admission_id, mismatch = _upsert(db, values, create_beds=create_beds,
                                                guard_others=only_hospital_id is not None)
            imported.append(admission_id)
            if values["name_removed"]:
                report.cleaned.append(RowRejected(line, "name_cleaned", "removed from the name: "
                                                  + ", ".join(values["name_removed"])))
            report.registry_mismatches += mismatch
        except AdmittedElsewhereRow as e:
            report.rejected.append(RowRejected(line, e.code, str(e)))
            if flag_service.flag_refused_admission(
                    db, hospital_id=values["hospital"].id or 0, insured_person_id=e.person_id, elsewhere=e.elsewhere,
                    his_admission_no=values["his_admission_no"], actor=actor):
                report.duplicate_admission_flags += 1
            continue
        except RowRefused as e:
            report.rejected.append(RowRejected(line, e.code, str(e)))
            continue
        except ValueError as e:
            report.rejected.append(RowRejected(line, "invalid_row", str(e)))
            continue
        setattr(report, outcome, getattr(report, outcome) + 1)
        if outcome in ("discharged", "transferred"):
            report.updated += 1
        if outcome != "unchanged":
            changed.append(admission_id)
        if done % COMMIT_EVERY == 0:
            _end_chunk(db)
    report.rejected.sort(key=lambda r: r.line)
    report.ineligible = flag_ineligible(db, admission_ids=imported)
    touched = {person for start in range(0, len(changed), 10_000) for person in db.exec(
        select(Admission.insured_person_id).where(col(Admission.id).in_(changed[start:start + 10_000])))}
    raised, _ = flag_service.sync_duplicate_admissions(db, person_ids=touched)
    report.duplicate_admission_flags += raised
    audit.record(db, actor=actor, action="roster.imported", object_type="roster", object_id=only_hospital_id or 0,
                 data={"created": report.created, "updated": report.updated, "unchanged": report.unchanged,
                       "rejected": len(report.rejected), "ineligible": report.ineligible,
                       "encoding": report.encoding, "duplicate_admission_flags": report.duplicate_admission_flags,
                       "registry_mismatches": report.registry_mismatches, "names_cleaned": len(report.cleaned)})
    db.commit()
    return report


def _end_chunk(db: Session) -> None:
    # Frees the write lock: writers queued meanwhile (uploads, heartbeats) go before the next chunk.
    db.commit()


def _validate(row: dict[str, Any], hospitals: dict[str, Hospital], only_hospital_id: int | None) -> dict[str, Any]:
    missing = [c for c in REQUIRED if not str(row.get(c) or "").strip()]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    hospital = hospitals.get(str(row["hospital_code"]).strip())
    if hospital is None:
        raise ValueError(f"unknown hospital code {str(row['hospital_code'])[:40]!r}")
    if only_hospital_id is not None and hospital.id != only_hospital_id:
        raise ValueError("row belongs to another hospital")
    admitted = _parse_time(row["admitted_at"], "admitted_at")
    discharged = _parse_time(row.get("discharged_at"), "discharged_at")
    if discharged and admitted and discharged < admitted:
        raise ValueError("discharged_at is before admitted_at")
    values = {k: str(row[k]).strip() for k in REQUIRED if k not in ("admitted_at",)}
    try:
        name = clean_name(values["name"])
    except NameRefused as e:
        raise RowRefused(e.code.value, f"{e.message}: {', '.join(e.details.get('code_points', []))}") from e
    values["name"], values["name_removed"] = name.value, name.removed
    for name in ("insurance_number", "his_admission_no", "bed_label", "ward_code"):
        if len(values[name]) > 40:
            raise ValueError(f"{name} is longer than 40 characters")
    funds = {"fund_per_day_fen": _parse_fen(row.get("fund_per_day"), "fund_per_day"),
             "fund_total_fen": _parse_fen(row.get("fund_total"), "fund_total"),
             "fund_total_at": _parse_time(row.get("fund_total_at"), "fund_total_at")}
    if funds["fund_total_fen"] is not None and funds["fund_total_at"] is None:
        raise ValueError("fund_total needs fund_total_at (the time the HIS summed it)")
    return {**values, "hospital": hospital, "admitted_at": admitted, "discharged_at": discharged,
            "insurance": insurance_registry.parse_insurance(row), "funds": funds}


def _refuse_if_admitted_elsewhere(db: Session, v: dict[str, Any]) -> None:
    """A hospital's row may not admit, re-admit or rename a person currently admitted in another hospital."""
    hospital: Hospital = v["hospital"]
    person = db.exec(select(InsuredPerson).where(InsuredPerson.insurance_number == v["insurance_number"])).first()
    if person is None:
        return
    elsewhere = db.exec(select(Admission).where(
        Admission.insured_person_id == person.id, Admission.hospital_id != hospital.id,
        col(Admission.discharged_at).is_(None)).order_by(col(Admission.id))).first()
    if elsewhere is None:
        return
    here = db.exec(select(Admission).where(Admission.hospital_id == hospital.id,
                                           Admission.his_admission_no == v["his_admission_no"])).first()
    admits = v["discharged_at"] is None and (here is None or here.discharged_at is not None)
    if admits or v["name"] != person.name:
        raise AdmittedElsewhereRow(person.id or 0, elsewhere)


def _upsert(db: Session, v: dict[str, Any], *, create_beds: bool,
            guard_others: bool = False) -> tuple[str, int, bool]:
    hospital: Hospital = v["hospital"]
    if guard_others:
        _refuse_if_admitted_elsewhere(db, v)
    if create_beds:
        ward = hospital_service.get_or_create_ward(db, hospital_id=hospital.id or 0, code=v["ward_code"])
        bed = hospital_service.get_or_create_bed(db, ward_id=ward.id or 0, label=v["bed_label"])
    else:
        found = registry.find_bed(db, hospital_id=hospital.id or 0, ward_code=v["ward_code"], bed_label=v["bed_label"])
        if found is None:
            raise RowRefused(UNKNOWN_BED, f"bed {v['bed_label']!r} of ward {v['ward_code']!r} is not in the bed "
                                          f"registry (register it, or import with create_beds)")
        ward, bed = found
    person, _ = get_or_create_person(db, insurance_number=v["insurance_number"], name=v["name"])
    admission = db.exec(select(Admission).where(Admission.hospital_id == hospital.id,
                                                Admission.his_admission_no == v["his_admission_no"])).first()
    if v["discharged_at"] is None:
        occupant = db.exec(select(Admission).where(Admission.bed_id == bed.id, col(Admission.discharged_at).is_(None),
                                                   Admission.his_admission_no != v["his_admission_no"])).first()
        if occupant is not None:
            raise ValueError(f"bed {v['bed_label']} is occupied by another current admission")
    if admission is None:
        admission = Admission(insured_person_id=person.id or 0, hospital_id=hospital.id or 0, ward_id=ward.id or 0,
                              bed_id=bed.id or 0, his_admission_no=v["his_admission_no"],
                              admitted_at=v["admitted_at"], discharged_at=v["discharged_at"],
                              **{k: f for k, f in v["funds"].items() if f is not None})
        db.add(admission)
        db.flush()
        return "created", admission.id or 0, _compare_registry(db, v, person, admission)
    if admission.insured_person_id != person.id:
        raise ValueError("HIS admission number already belongs to another insured person")
    outcome = "unchanged"
    if admission.bed_id != bed.id:
        admission.ward_id, admission.bed_id, outcome = ward.id or 0, bed.id or 0, "transferred"
    if admission.discharged_at != v["discharged_at"]:
        admission.discharged_at = v["discharged_at"]
        outcome = "discharged" if v["discharged_at"] else "updated"
    if admission.admitted_at != v["admitted_at"]:
        admission.admitted_at, outcome = v["admitted_at"], ("updated" if outcome == "unchanged" else outcome)
    for name, amount in v["funds"].items():
        if amount is not None and getattr(admission, name) != amount:
            setattr(admission, name, amount)
            outcome = "updated" if outcome == "unchanged" else outcome
    db.add(admission)
    db.flush()
    return outcome, admission.id or 0, _compare_registry(db, v, person, admission)


def _compare_registry(db: Session, v: dict[str, Any], person: InsuredPerson, admission: Admission) -> bool:
    """True when the HIS's insurance columns disagree with the registry (one open flag per admission)."""
    claimed = v["insurance"]
    fields = insurance_registry.disagreement(claimed, person) if claimed is not None else []
    if not fields:
        return False
    held = insurance_registry.record_of(person) or {}
    open_flag = db.exec(select(Flag.id).where(Flag.kind == FlagKind.REGISTRY_MISMATCH,
                                              Flag.admission_id == admission.id,
                                              col(Flag.status).not_in(flag_service.CLOSED))).first()
    if open_flag is None:
        flag = flag_service.raise_flag(db, kind=FlagKind.REGISTRY_MISMATCH, hospital_id=admission.hospital_id,
                                       details={**{f"his_{k}": str(claimed[k] or "") for k in fields},
                                                **{f"registry_{k}": str(held.get(k) or "") for k in fields}})
        flag.admission_id, flag.insured_person_id = admission.id, person.id
        db.add(flag)
        db.flush()
    return True
