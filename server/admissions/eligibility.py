"""Insurance eligibility (医保资格): an admission is lawful only if its person is insured on the admission date.

One rule (`ineligibility`) decides it for every path: the roster import, the registry update and the demo.
"""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, col, select

from models.verdicts import FlagKind
from server.admissions.tables import Admission
from server.flags.tables import Flag
from server.localtime import local_date
from server.persons.tables import InsuranceStatus, InsuredPerson


def ineligibility(person: InsuredPerson, on: date) -> str | None:
    """Why the person was not insured on this date (a stable reason string), or None when insured."""
    if person.insurance_status is None:
        return "not_in_registry"
    if person.insured_from is not None and on < person.insured_from:
        return "not_yet_insured"
    if person.insured_until is not None and on > person.insured_until:
        return "coverage_ended"
    # A suspended or ended insurance still covered the days up to its end date.
    if person.insurance_status != InsuranceStatus.ACTIVE and person.insured_until is None:
        return person.insurance_status.value
    return None


def flag_ineligible(db: Session, *, admission_ids: list[int]) -> int:
    """One `ineligible` flag per admission whose person was not insured on its admission date; flushes."""
    if not admission_ids:
        return 0
    already = set(db.exec(select(Flag.admission_id).where(Flag.kind == FlagKind.INELIGIBLE,
                                                          col(Flag.admission_id).in_(admission_ids))))
    todo = [a for a in admission_ids if a not in already]
    rows = db.exec(select(Admission, InsuredPerson)
                   .join(InsuredPerson, col(InsuredPerson.id) == Admission.insured_person_id)
                   .where(col(Admission.id).in_(todo)))
    created = 0
    for admission, person in rows:
        reason = ineligibility(person, local_date(admission.admitted_at))
        if reason is None:
            continue
        status = person.insurance_status.value if person.insurance_status else None
        flag = Flag(kind=FlagKind.INELIGIBLE, hospital_id=admission.hospital_id, admission_id=admission.id,
                    insured_person_id=person.id,
                    details={"reason": reason, "insurance_status": status,
                             "insured_from": str(person.insured_from or ""),
                             "insured_until": str(person.insured_until or ""),
                             "admitted_on": str(local_date(admission.admitted_at))})
        db.add(flag)
        created += 1
    db.flush()
    return created

