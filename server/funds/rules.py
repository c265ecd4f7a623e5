"""Which agreement holds for a hospital: the rule of its county, else of a region above it, else the default."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from sqlmodel import Session, select

from models.errors import InvalidInput, NotFound
from server.audit import service as audit
from server.db import utcnow
from server.funds.tables import AgreementRule, CountedDays
from server.hospitals.tables import Hospital
from server.localtime import LOCAL_TZ
from server.regions.tables import Region

# Where no region has a rule: the days since the last verified presence are refused once (the loss), no
# extra multiple, and leaves may not cover a night (the agreements in the seed reports forbid it).
DEFAULT_RULE = AgreementRule(region_id=0, counted_days=CountedDays.SINCE_LAST_VERIFIED, deduction_multiple=1.0,
                             kind_multiples={}, leave_overnight_allowed=False, updated_by="default")
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def rule_for_region(db: Session, region_id: int | None) -> AgreementRule:
    """The nearest rule up the region tree from this region."""
    seen: set[int] = set()
    while region_id is not None and region_id not in seen:
        seen.add(region_id)
        found = db.exec(select(AgreementRule).where(AgreementRule.region_id == region_id)).first()
        if found is not None:
            return found
        region = db.get(Region, region_id)
        region_id = region.parent_id if region else None
    return DEFAULT_RULE


def rule_for_hospital(db: Session, hospital_id: int | None) -> AgreementRule:
    hospital = db.get(Hospital, hospital_id) if hospital_id else None
    return rule_for_region(db, hospital.county_id if hospital else None)


def set_rule(db: Session, *, region_name: str, actor: str, counted_days: CountedDays | None = None,
             deduction_multiple: float | None = None, kind_multiples: dict[str, float] | None = None,
             leave_overnight_allowed: bool | None = None, night_starts: str | None = None,
             night_ends: str | None = None) -> AgreementRule:
    """Creates or changes a region's rule (only the given fields); audited; commits."""
    region = db.exec(select(Region).where(Region.name == region_name)).first()
    if region is None:
        raise NotFound(f"unknown region {region_name!r}")
    rule = db.exec(select(AgreementRule).where(AgreementRule.region_id == region.id)).first() or AgreementRule(
        region_id=region.id or 0, updated_by=actor)
    for multiple in [deduction_multiple, *(kind_multiples or {}).values()]:
        if multiple is not None and not 0 <= float(multiple) <= 100:
            raise InvalidInput("a deduction multiple must be between 0 and 100")
    for at in (night_starts, night_ends):
        if at is not None and not HHMM.match(at):
            raise InvalidInput(f"not a local time HH:MM: {at!r}")
    changes = {"counted_days": counted_days, "deduction_multiple": deduction_multiple,
               "kind_multiples": kind_multiples, "leave_overnight_allowed": leave_overnight_allowed,
               "night_starts": night_starts, "night_ends": night_ends}
    for name, value in changes.items():
        if value is not None:
            setattr(rule, name, value)
    rule.updated_by, rule.updated_at = actor, utcnow()
    db.add(rule)
    db.flush()
    audit.record(db, actor=actor, action="agreement.set", object_type="region", object_id=region.id or 0,
                 data=rule_summary(rule))
    db.commit()
    return rule


def rule_summary(rule: AgreementRule) -> dict[str, object]:
    """What a computation records of the rule it used, so the amount can be re-derived later."""
    return {"region_id": rule.region_id, "counted_days": rule.counted_days.value,
            "deduction_multiple": rule.deduction_multiple, "kind_multiples": dict(rule.kind_multiples),
            "leave_overnight_allowed": rule.leave_overnight_allowed, "night": f"{rule.night_starts}-{rule.night_ends}"}


def multiple_for(rule: AgreementRule, kind: str) -> float:
    return float(rule.kind_multiples.get(kind, rule.deduction_multiple))


def covers_night(rule: AgreementRule, starts_at: datetime, ends_at: datetime) -> bool:
    """Whether [starts_at, ends_at] reaches into a night window of the agreement (local time)."""
    start, end = starts_at.astimezone(LOCAL_TZ), ends_at.astimezone(LOCAL_TZ)
    n_start, n_end = (time.fromisoformat(rule.night_starts), time.fromisoformat(rule.night_ends))
    day = start.date() - timedelta(days=1)
    while day <= end.date():
        night_from = datetime.combine(day, n_start, tzinfo=LOCAL_TZ)
        night_to = datetime.combine(day + timedelta(days=1) if n_end <= n_start else day, n_end, tzinfo=LOCAL_TZ)
        if start < night_to and end > night_from:
            return True
        day += timedelta(days=1)
    return False
