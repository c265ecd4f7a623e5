"""On-site inspection (移动稽查): a bureau supervisor's own phone checks the beds of a hospital or ward.

The inspector signs in with their own account; starting an inspection creates an unannounced spot check of
the chosen ward (or hospital) whose tasks only the inspector's device receives and may answer, and points the
inspector's device (one per browser, owned by the user, revocable like any device) at that ward. Results
therefore carry the inspector's device, never a hospital's, and the hospital's tablets never see the check.
"""

from __future__ import annotations

import hashlib
import secrets

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from models.errors import InvalidInput, NotFound
from server.accounts.tables import UserAccount
from server.admissions.tables import Admission
from server.audit import service as audit
from server.campaigns import service as campaign_service
from server.campaigns.tables import CampaignKind
from server.db import utcnow
from server.devices.tables import Device
from server.hospitals.tables import Hospital, Ward

INSPECTOR = "inspector"
MAX_DEADLINE_S = 4 * 3600


class InspectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hospital_id: int
    ward_id: int | None = Field(default=None, description="One ward; none: the whole hospital")
    deadline_s: int = Field(default=3600, ge=300, le=MAX_DEADLINE_S)
    device_token: str | None = Field(default=None, max_length=128,
                                     description="This browser's inspector credential, when it has one")


class InspectionRead(BaseModel):
    campaign_id: int
    device_id: int
    token: str | None = Field(description="A new credential for this browser (shown once), else null")
    hospital_name: str
    ward_id: int
    ward_name: str
    tasks: int


class WardTarget(BaseModel):
    ward_id: int
    ward_name: str
    inpatients: int


class HospitalTarget(BaseModel):
    hospital_id: int
    hospital_name: str
    wards: list[WardTarget]


def targets(db: Session) -> list[HospitalTarget]:
    """Hospitals and wards an inspector may go to, with their current inpatients."""
    counts = dict(db.exec(select(Admission.ward_id, func.count()).where(col(Admission.discharged_at).is_(None))
                          .group_by(col(Admission.ward_id))).all())
    wards: dict[int, list[WardTarget]] = {}
    for ward in db.exec(select(Ward).order_by(col(Ward.code))):
        wards.setdefault(ward.hospital_id, []).append(
            WardTarget(ward_id=ward.id or 0, ward_name=ward.name, inpatients=int(counts.get(ward.id, 0))))
    return [HospitalTarget(hospital_id=h.id or 0, hospital_name=h.name, wards=wards.get(h.id or 0, []))
            for h in db.exec(select(Hospital).order_by(col(Hospital.name)))]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(db: Session, *, user: UserAccount, body: InspectionCreate) -> InspectionRead:
    hospital = db.get(Hospital, body.hospital_id)
    if hospital is None:
        raise NotFound("hospital not found")
    wards = list(db.exec(select(Ward).where(Ward.hospital_id == hospital.id).order_by(col(Ward.code))))
    ward = next((w for w in wards if w.id == body.ward_id), None) if body.ward_id is not None else None
    if body.ward_id is not None and ward is None:
        raise NotFound("ward not found in this hospital")
    admissions = select(Admission.id).where(Admission.hospital_id == hospital.id,
                                            col(Admission.discharged_at).is_(None), Admission.admitted_at <= utcnow())
    if ward is not None:
        admissions = admissions.where(Admission.ward_id == ward.id)
    admission_ids = [int(a) for a in db.exec(admissions)]
    if not admission_ids:
        raise InvalidInput("nobody is admitted there: there is no bed to check", field="ward_id")
    first_admission = db.get(Admission, admission_ids[0])
    first_ward = ward or next(w for w in wards if first_admission is not None and w.id == first_admission.ward_id)

    device, token = _inspector_device(db, user=user, presented=body.device_token, hospital_id=hospital.id or 0,
                                      ward_id=first_ward.id or 0)
    campaign = campaign_service.create_campaign(
        db, hospital_ids=[hospital.id or 0], deadline_s=body.deadline_s, actor=f"user:{user.id}",
        kind=CampaignKind.SPOT_CHECK, admission_ids=admission_ids,
        scope={"hospital_ids": [hospital.id], "ward_id": ward.id if ward else None, "inspector": user.id,
               "inspector_device_id": device.id},
        inspector_device_id=device.id)
    audit.record(db, actor=f"user:{user.id}", action="inspection.started", object_type="campaign",
                 object_id=campaign.id or 0, data={"device_id": device.id, "hospital_id": hospital.id,
                                                   "ward_id": ward.id if ward else None,
                                                   "tasks": campaign.task_count})
    db.commit()
    return InspectionRead(campaign_id=campaign.id or 0, device_id=device.id or 0, token=token,
                          hospital_name=hospital.name, ward_id=first_ward.id or 0, ward_name=first_ward.name,
                          tasks=campaign.task_count)


def _inspector_device(db: Session, *, user: UserAccount, presented: str | None, hospital_id: int,
                      ward_id: int) -> tuple[Device, str | None]:
    """This browser's inspector device, pointed at the ward to inspect: the one its credential names when that
    is the user's and still valid, else a new one (its token is returned once)."""
    if presented:
        device = db.exec(select(Device).where(Device.token_hash == _digest(presented))).first()
        if (device is not None and device.kind == INSPECTOR and device.owner_user_id == user.id
                and device.revoked_at is None):
            device.hospital_id, device.ward_id = hospital_id, ward_id
            db.add(device)
            db.flush()
            return device, None
    token = secrets.token_urlsafe(32)
    device = Device(kind=INSPECTOR, owner_user_id=user.id, hospital_id=hospital_id, ward_id=ward_id,
                    name=f"移动稽查 {user.username}", token_hash=_digest(token), last_seen_at=utcnow())
    db.add(device)
    db.flush()
    audit.record(db, actor=f"user:{user.id}", action="device.paired", object_type="device", object_id=device.id or 0,
                 data={"kind": INSPECTOR, "owner_user_id": user.id})
    return device, token
