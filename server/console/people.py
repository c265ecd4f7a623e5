"""People as reviewers see them: the insured person's page (enrolled photos, admissions, flags) and the persons
or staff an evidence check named as the face in the bed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from models.errors import NotFound
from server.accounts.deps import scope
from server.accounts.tables import Role, UserAccount
from server.admissions.tables import Admission
from server.flags import service as flag_service
from server.flags.tables import Flag
from server.hospitals.tables import Bed, Hospital, Ward
from server.persons.tables import FaceEmbedding, InsuredPerson, StaffMember


@dataclass
class Named:
    """Whose face the capture shows, when it is not the billed person's."""

    kind: str  # insured_person | staff
    distance: float | None
    name: str = ""
    number: str = ""  # insurance or staff number
    person_id: int | None = None
    has_photo: bool = False
    hospital: str = ""  # where the person is admitted now, or the staff member's hospital


def visible_person(db: Session, user: UserAccount, person_id: int) -> InsuredPerson:
    """The person, or 404; hospital staff see only persons admitted (now or before) to their hospital."""
    person = db.get(InsuredPerson, person_id)
    if person is None:
        raise NotFound("person not found")
    if user.role == Role.HOSPITAL_STAFF:
        admitted = db.exec(select(Admission.id).where(Admission.insured_person_id == person_id,
                                                      Admission.hospital_id == user.hospital_id).limit(1)).first()
        if admitted is None:
            raise NotFound("person not found")
    return person


def photo_ids(db: Session, person_id: int) -> list[int]:
    """Enrolled faces with a thumbnail, newest first (inactive ones too: earlier evidence was judged on them)."""
    return [int(i) for i in db.exec(select(FaceEmbedding.id).where(
        FaceEmbedding.insured_person_id == person_id, col(FaceEmbedding.thumbnail_jpeg).is_not(None))
        .order_by(col(FaceEmbedding.is_active).desc(), col(FaceEmbedding.id).desc()))]


def thumbnail(db: Session, person_id: int, embedding_id: int | None = None) -> bytes | None:
    """One enrolled thumbnail of the person (the newest active one by default)."""
    stmt = select(FaceEmbedding.thumbnail_jpeg).where(FaceEmbedding.insured_person_id == person_id,
                                                      col(FaceEmbedding.thumbnail_jpeg).is_not(None))
    if embedding_id is not None:
        stmt = stmt.where(FaceEmbedding.id == embedding_id)
    else:
        stmt = stmt.where(FaceEmbedding.is_active == True)  # noqa: E712
    return db.exec(stmt.order_by(col(FaceEmbedding.id).desc()).limit(1)).first()


def named_in(db: Session, user: UserAccount, flag: Flag) -> list[Named]:
    """The evidence check's 1:N findings of this flag, with names. Hospital staff learn that someone else was
    in the bed, not who: the person may be another hospital's patient."""
    found: list[Named] = []
    if user.role == Role.HOSPITAL_STAFF:
        return [Named(str(e.get("kind", "")), e.get("distance")) for e in flag.details.get("named") or []
                if isinstance(e, dict)]
    for entry in flag.details.get("named") or []:
        if not isinstance(entry, dict):
            continue
        distance = entry.get("distance")
        if entry.get("kind") == "staff":
            staff = db.get(StaffMember, entry.get("staff_member_id") or 0)
            hospital = db.get(Hospital, entry.get("hospital_id") or 0)
            found.append(Named("staff", distance, staff.name if staff else "", str(entry.get("staff_number", "")),
                               hospital=hospital.name if hospital else ""))
            continue
        person_id = entry.get("insured_person_id")
        person = db.get(InsuredPerson, person_id) if person_id else None
        hospital = db.get(Hospital, entry.get("admitted_at_hospital_id") or 0)
        found.append(Named("insured_person", distance, person.name if person else "",
                           str(entry.get("insurance_number") or (person.insurance_number if person else "")),
                           person_id=person_id, has_photo=bool(person_id and thumbnail(db, person_id)),
                           hospital=hospital.name if hospital else ""))
    return found


@dataclass
class PersonPage:
    person: InsuredPerson
    photos: list[int]
    admissions: list[tuple[Admission, str, str, str]] = field(default_factory=list)  # hospital, ward, bed
    flags: list[tuple[Flag, str]] = field(default_factory=list)


def person_page(db: Session, user: UserAccount, person_id: int) -> PersonPage:
    """Everything the person page shows, within the user's hospital scope."""
    person = visible_person(db, user, person_id)
    page = PersonPage(person, photo_ids(db, person_id))
    stmt: Any = (select(Admission, Hospital.name, Ward.code, Bed.label)
                 .join(Hospital, col(Hospital.id) == Admission.hospital_id)
                 .join(Ward, col(Ward.id) == Admission.ward_id).join(Bed, col(Bed.id) == Admission.bed_id)
                 .where(Admission.insured_person_id == person_id).order_by(col(Admission.admitted_at).desc()))
    page.admissions = [(a, h, w, b) for a, h, w, b in db.exec(scope(stmt, user, Admission.hospital_id))]
    flags: Any = (select(Flag, Hospital.name).outerjoin(Hospital, col(Hospital.id) == Flag.hospital_id)
                  .where(Flag.insured_person_id == person_id).order_by(col(Flag.id).desc()).limit(200))
    page.flags = [(f, h or "") for f, h in db.exec(flag_service.scoped(flags, user))]
    return page
