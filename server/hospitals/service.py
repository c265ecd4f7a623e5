"""Regions, hospitals, wards and beds."""

from __future__ import annotations

from sqlmodel import Session, select

from models.errors import InvalidInput
from server.hospitals.tables import Bed, Hospital, HospitalKind, Ward
from server.regions.tables import Region, RegionLevel


def get_or_create_region(db: Session, *, name: str, level: RegionLevel, parent_id: int | None) -> Region:
    region = db.exec(select(Region).where(Region.name == name, Region.level == level,
                                          Region.parent_id == parent_id)).first()
    if region is None:
        region = Region(name=name, level=level, parent_id=parent_id)
        db.add(region)
        db.flush()
    return region


def get_or_create_county(db: Session, *, province: str, city: str, county: str) -> Region:
    p = get_or_create_region(db, name=province, level=RegionLevel.PROVINCE, parent_id=None)
    c = get_or_create_region(db, name=city, level=RegionLevel.CITY, parent_id=p.id)
    return get_or_create_region(db, name=county, level=RegionLevel.COUNTY, parent_id=c.id)


def upsert_hospital(db: Session, *, code: str, name: str, county_id: int, kind: HospitalKind) -> Hospital:
    hospital = db.exec(select(Hospital).where(Hospital.code == code)).first()
    if hospital is None:
        hospital = Hospital(code=code, name=name, county_id=county_id, kind=kind)
    else:
        hospital.name, hospital.county_id, hospital.kind = name, county_id, kind
    db.add(hospital)
    db.flush()
    return hospital


def get_or_create_ward(db: Session, *, hospital_id: int, code: str, name: str = "") -> Ward:
    ward = db.exec(select(Ward).where(Ward.hospital_id == hospital_id, Ward.code == code)).first()
    if ward is None:
        ward = Ward(hospital_id=hospital_id, code=code, name=name or code)
        db.add(ward)
        db.flush()
    return ward


def get_or_create_bed(db: Session, *, ward_id: int, label: str) -> Bed:
    bed = db.exec(select(Bed).where(Bed.ward_id == ward_id, Bed.label == label)).first()
    if bed is None:
        bed = Bed(ward_id=ward_id, label=label)
        db.add(bed)
        db.flush()
    return bed


def import_hospitals_csv(db: Session, data: bytes, *, encoding: str | None = None) -> int:
    """CSV columns province, city, county, code, name, kind (public|private); returns rows upserted.

    All or nothing: a bad row refuses the file with its line number (the hospital list is small and
    hand-made; half of it would be worse than none)."""
    from server.tabular import read_csv

    parsed = read_csv(data, required=("province", "city", "county", "code", "name"), encoding=encoding,
                      what="hospitals CSV")
    if parsed.rejected:
        raise InvalidInput(f"hospitals CSV line {parsed.rejected[0].line}: {parsed.rejected[0].message}")
    for line, row in parsed.rows:
        try:
            values = {k: (row.get(k) or "").strip() for k in ("province", "city", "county", "code", "name", "kind")}
            if not all(values[k] for k in ("province", "city", "county", "code", "name")):
                raise ValueError("province, city, county, code and name are required")
            county = get_or_create_county(db, province=values["province"], city=values["city"],
                                          county=values["county"])
            upsert_hospital(db, code=values["code"], name=values["name"], county_id=county.id or 0,
                            kind=HospitalKind(values["kind"] or "public"))
        except ValueError as e:
            raise InvalidInput(f"hospitals CSV line {line}: {e}") from e
    db.commit()
    return len(parsed.rows)
