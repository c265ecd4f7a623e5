"""The ward and bed registry: which beds a hospital has, kept apart from who lies in them.

A roster (server/admissions/roster.py) names beds; it creates none unless asked to, so a typo in a HIS
export is a rejected row, not a new bed. The registry is filled from a CSV (`bedcheck beds import`,
`POST /api/v1/beds/import`): hospital_code, ward_code, bed_label, and optionally ward_name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from server.audit import service as audit
from server.hospitals import service as hospital_service
from server.hospitals.tables import Bed, Hospital, Ward
from server.tabular import CsvRows, RowRejected, read_csv

REQUIRED = ("hospital_code", "ward_code", "bed_label")
MAX_LABEL = 40


@dataclass
class RegistryReport:
    wards_created: int = 0
    beds_created: int = 0
    unchanged: int = 0
    rejected: list[RowRejected] = field(default_factory=list)
    encoding: str = "utf-8"


def find_bed(db: Session, *, hospital_id: int, ward_code: str, bed_label: str) -> tuple[Ward, Bed] | None:
    """The registered ward and bed, or None."""
    row = db.exec(select(Ward, Bed).join(Bed, col(Bed.ward_id) == col(Ward.id))
                  .where(Ward.hospital_id == hospital_id, Ward.code == ward_code, Bed.label == bed_label)).first()
    return (row[0], row[1]) if row else None


def parse_beds(data: bytes, *, encoding: str | None = None) -> CsvRows:
    return read_csv(data, required=REQUIRED, encoding=encoding, what="bed registry CSV")


def import_beds(db: Session, *, rows: CsvRows, actor: str, only_hospital_id: int | None = None) -> RegistryReport:
    """Registers wards and beds (idempotent); bad rows are reported with their line number; commits."""
    report = RegistryReport(rejected=list(rows.rejected), encoding=rows.encoding)
    hospitals = {h.code: h for h in db.exec(select(Hospital))}
    for line, row in rows.rows:
        values = {k: str(row.get(k) or "").strip() for k in (*REQUIRED, "ward_name")}
        missing = [k for k in REQUIRED if not values[k]]
        hospital = hospitals.get(values["hospital_code"])
        problem = (f"missing {', '.join(missing)}" if missing
                   else f"unknown hospital code {values['hospital_code'][:40]!r}" if hospital is None
                   else "row belongs to another hospital" if only_hospital_id not in (None, hospital.id)
                   else "ward_code or bed_label is longer than 40 characters"
                   if max(len(values["ward_code"]), len(values["bed_label"])) > MAX_LABEL else None)
        if problem or hospital is None:
            report.rejected.append(RowRejected(line, "invalid_row", problem or "unknown hospital"))
            continue
        ward = db.exec(select(Ward).where(Ward.hospital_id == hospital.id, Ward.code == values["ward_code"])).first()
        if ward is None:
            ward = hospital_service.get_or_create_ward(db, hospital_id=hospital.id or 0, code=values["ward_code"],
                                                       name=values["ward_name"][:120])
            report.wards_created += 1
        if find_bed(db, hospital_id=hospital.id or 0, ward_code=ward.code, bed_label=values["bed_label"]):
            report.unchanged += 1
            continue
        hospital_service.get_or_create_bed(db, ward_id=ward.id or 0, label=values["bed_label"])
        report.beds_created += 1
    report.rejected.sort(key=lambda r: r.line)
    audit.record(db, actor=actor, action="beds.imported", object_type="bed_registry", object_id=only_hospital_id or 0,
                 data={"wards_created": report.wards_created, "beds_created": report.beds_created,
                       "rejected": len(report.rejected)})
    db.commit()
    return report


def list_beds(db: Session, *, hospital_id: int) -> list[tuple[Ward, Bed]]:
    stmt = (select(Ward, Bed).join(Bed, col(Bed.ward_id) == col(Ward.id)).where(Ward.hospital_id == hospital_id)
            .order_by(col(Ward.code), col(Bed.label)))
    return [(w, b) for w, b in db.exec(stmt)]
