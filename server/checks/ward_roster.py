"""What a ward device needs to check its beds: beds, current admissions, masked names, enrolled embeddings."""

from __future__ import annotations

from sqlmodel import Session, col, select

from models.wire import BedRoster, WardRoster
from server.admissions.tables import Admission, Exemption
from server.db import utcnow
from server.devices.tables import Device
from server.hospitals.tables import Bed, Ward
from server.persons.service import enrolled_vectors
from server.persons.tables import InsuredPerson


def masked_name(name: str) -> str:
    """The family name and stars: enough for a nurse to match a bed, little for anyone else."""
    return name[:1] + "*" * max(len(name) - 1, 1)


def ward_roster(db: Session, *, device: Device, default_engine: str) -> WardRoster:
    """The device's own ward and nothing else, with the enrolled embeddings of the device's engine only
    (`default_engine`, the server's own, until the device reports one)."""
    engine_tag = device.engine_version or default_engine
    ward = db.get(Ward, device.ward_id)
    assert ward is not None
    beds = list(db.exec(select(Bed).where(Bed.ward_id == ward.id).order_by(col(Bed.label))))
    admissions = {a.bed_id: a for a in db.exec(select(Admission).where(
        Admission.ward_id == ward.id, col(Admission.discharged_at).is_(None)))}
    people = {p.id: p for p in db.exec(select(InsuredPerson).where(
        col(InsuredPerson.id).in_([a.insured_person_id for a in admissions.values()])))}
    vectors = enrolled_vectors(db, [a.insured_person_id for a in admissions.values()], engine=engine_tag)
    now = utcnow()
    exempt = {e.admission_id: e.reason.value for e in db.exec(select(Exemption).where(
        col(Exemption.admission_id).in_([a.id for a in admissions.values()]), Exemption.starts_at <= now))
        if e.ends_at is None or e.ends_at > now}
    out = []
    for bed in beds:
        adm = admissions.get(bed.id or 0)
        person = people.get(adm.insured_person_id) if adm else None
        out.append(BedRoster(
            bed_id=bed.id or 0, bed_label=bed.label, admission_id=adm.id if adm else None,
            insured_person_id=adm.insured_person_id if adm else None,
            display_name=masked_name(person.name) if person else "",
            exemption=exempt.get(adm.id) if adm else None,
            embeddings=vectors[adm.insured_person_id].vectors.tolist()
            if adm and adm.insured_person_id in vectors else []))
    return WardRoster(hospital_id=device.hospital_id, ward_id=ward.id or 0, ward_name=ward.name,
                      engine_version=engine_tag, server_time=now, beds=out)
