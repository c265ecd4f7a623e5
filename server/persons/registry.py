"""The bureau's insurance registry (参保登记): who is insured, of which kind, from when to when.

Only the bureau's registry feed writes it (`import_registry`: `bedcheck registry import`, or
`POST /api/v1/registry/import` by administrators and supervisors). A hospital's roster import never does,
whoever uploads it: its insurance columns are what the hospital's HIS says, compared with the registry; a
disagreement raises a `registry_mismatch` flag for the bureau (server/admissions/roster.py), and the registry
keeps its record. After the feed changes a person's record, their current admissions are checked again for
eligibility (server/admissions/eligibility.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session, col, select

from models.errors import InvalidInput, NameRefused
from models.names import clean_name
from server.admissions.eligibility import flag_ineligible
from server.admissions.tables import Admission
from server.audit import service as audit
from server.persons.tables import InsuranceStatus, InsuredPerson
from server.tabular import CsvRows, RowRejected

REQUIRED = ("insurance_number", "insurance_status")
FIELDS = ("insurance_status", "insurance_type", "insured_from", "insured_until")
# How registry and HIS exports name the status, in both languages.
STATUS_NAMES = {"active": InsuranceStatus.ACTIVE, "正常": InsuranceStatus.ACTIVE, "参保": InsuranceStatus.ACTIVE,
                "参保缴费": InsuranceStatus.ACTIVE, "suspended": InsuranceStatus.SUSPENDED,
                "暂停": InsuranceStatus.SUSPENDED, "中止": InsuranceStatus.SUSPENDED, "ended": InsuranceStatus.ENDED,
                "终止": InsuranceStatus.ENDED, "注销": InsuranceStatus.ENDED}


def _date(value: Any, name: str) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError as e:
        raise ValueError(f"{name} is not an ISO date: {str(value)[:40]!r}") from e


def parse_insurance(row: dict[str, Any]) -> dict[str, Any] | None:
    """A row's insurance record (status, type, from, until), None when it has none; ValueError when malformed."""
    raw = str(row.get("insurance_status") or "").strip()
    if not raw:
        if any(str(row.get(c) or "").strip() for c in ("insurance_type", "insured_from", "insured_until")):
            raise ValueError("insurance_status is required with insurance_type, insured_from or insured_until")
        return None
    status = STATUS_NAMES.get(raw.lower())
    if status is None:
        raise ValueError(f"unknown insurance_status {raw[:20]!r} (active, suspended or ended)")
    insured_from, insured_until = _date(row.get("insured_from"), "insured_from"), _date(
        row.get("insured_until"), "insured_until")
    if insured_from and insured_until and insured_until < insured_from:
        raise ValueError("insured_until is before insured_from")
    kind = str(row.get("insurance_type") or "").strip()
    if len(kind) > 40:
        raise ValueError("insurance_type is longer than 40 characters")
    return {"insurance_status": status, "insurance_type": kind, "insured_from": insured_from,
            "insured_until": insured_until}


def record_of(person: InsuredPerson) -> dict[str, Any] | None:
    """The registry's record of the person, in parse_insurance's form; None when the registry lacks them."""
    if person.insurance_status is None:
        return None
    return {name: getattr(person, name) for name in FIELDS}


def disagreement(claimed: dict[str, Any], person: InsuredPerson) -> list[str]:
    """The fields where what a hospital's HIS claims differs from the registry (empty: they agree).

    The insurance type is free text in each HIS's words, so only status and dates are compared."""
    held = record_of(person)
    if held is None:
        return []
    return [name for name in ("insurance_status", "insured_from", "insured_until") if claimed[name] != held[name]]


@dataclass
class RegistryReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RowRejected] = field(default_factory=list)
    encoding: str = "utf-8"
    ineligible: int = 0


def import_registry(db: Session, *, rows: CsvRows, actor: str) -> RegistryReport:
    """Writes the bureau's registry feed row by row; re-checks the eligibility of changed persons' admissions."""
    report = RegistryReport(rejected=list(rows.rejected), encoding=rows.encoding)
    changed: list[int] = []
    for line, row in rows.rows:
        try:
            number, name, record = _validate(row)
        except NameRefused as e:
            report.rejected.append(RowRejected(line, e.code.value, e.message))
            continue
        except ValueError as e:
            report.rejected.append(RowRejected(line, "invalid_row", str(e)))
            continue
        person = db.exec(select(InsuredPerson).where(InsuredPerson.insurance_number == number)).first()
        if person is None:
            if not name:
                report.rejected.append(RowRejected(line, "invalid_row", "a person new to the registry needs a name"))
                continue
            person = InsuredPerson(insurance_number=number, name=name, **record)
            db.add(person)
            db.flush()
            report.created += 1
            continue
        if record_of(person) == record:
            report.unchanged += 1
            continue
        for key, value in record.items():
            setattr(person, key, value)
        db.add(person)
        changed.append(person.id or 0)
        report.updated += 1
    report.rejected.sort(key=lambda r: r.line)
    db.flush()
    current = list(db.exec(select(Admission.id).where(col(Admission.insured_person_id).in_(changed),
                                                      col(Admission.discharged_at).is_(None)))) if changed else []
    report.ineligible = flag_ineligible(db, admission_ids=[a for a in current if a is not None])
    audit.record(db, actor=actor, action="registry.imported", object_type="registry", object_id=0,
                 data={"created": report.created, "updated": report.updated, "unchanged": report.unchanged,
                       "rejected": len(report.rejected), "ineligible": report.ineligible,
                       "encoding": report.encoding})
    db.commit()
    return report


def _validate(row: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    missing = [c for c in REQUIRED if not str(row.get(c) or "").strip()]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    number = str(row["insurance_number"]).strip()
    if len(number) > 40:
        raise ValueError("insurance_number is longer than 40 characters")
    name = str(row.get("name") or "").strip()
    if name:
        name = clean_name(name, field="name").value
    record = parse_insurance(row)
    if record is None:  # unreachable: insurance_status is required
        raise InvalidInput("insurance_status is required")
    return number, name, record
