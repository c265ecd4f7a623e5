"""Imports every domain's tables so SQLModel.metadata is complete (migrations, autogenerate checks)."""

from server.accounts.tables import SignInThrottle, UserAccount
from server.admissions.tables import Admission, Exemption, Leave
from server.audit.tables import AuditRecord
from server.campaigns.tables import Campaign, CheckTask
from server.checks.tables import CheckResult, KeyFrame
from server.devices.tables import Device, PairingCode
from server.evidence.tables import EvidenceFingerprint
from server.flags.tables import Appeal, AppealAttachment, Flag, Review
from server.funds.tables import AgreementRule
from server.hospitals.tables import Bed, Hospital, Ward
from server.persons.tables import FaceEmbedding, InsuredPerson, StaffMember
from server.places.tables import BedReference, HospitalGeofence, SceneEvidence, WardFingerprint
from server.regions.tables import Region
from server.reports.tables import CheckTally, TallyState

__all__ = [
    "AgreementRule", "CheckTally", "Leave", "TallyState",
    "Admission", "Appeal", "AppealAttachment", "AuditRecord", "Bed", "Campaign", "CheckResult", "CheckTask",
    "Device", "Exemption", "FaceEmbedding", "Flag", "Hospital", "InsuredPerson", "KeyFrame", "PairingCode", "Region",
    "Review", "SignInThrottle", "StaffMember", "UserAccount", "Ward",
    "BedReference", "HospitalGeofence", "SceneEvidence", "WardFingerprint",
    "EvidenceFingerprint",
]
