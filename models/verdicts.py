"""Verdicts, flag kinds and capture outcomes: the vocabulary every side of bedcheck shares.

Values are stable wire and database strings.
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    PENDING = "pending"            # no result yet, deadline not passed
    VERIFIED = "verified"          # live face matching the admitted insured person, in time
    ABSENT = "absent"              # bed reported empty, or no face found by the deadline (bed-hanging)
    IMPERSONATED = "impersonated"  # live face that does not match the admitted person
    SPOOF = "spoof"                # capture failed liveness (photo, screen replay)
    UNRECOGNISED = "unrecognised"  # a face was captured but could not be judged (quality too low)
    EXEMPT = "exempt"              # exemption recorded before the check
    OVERDUE = "overdue"            # deadline passed with no answer from the device
    ON_LEAVE = "on_leave"          # bed empty inside a leave approved before the task was issued


# Verdicts that close a task for good; the rest may still change.
FINAL_VERDICTS = frozenset(
    {Verdict.VERIFIED, Verdict.ABSENT, Verdict.IMPERSONATED, Verdict.SPOOF, Verdict.UNRECOGNISED, Verdict.EXEMPT,
     Verdict.ON_LEAVE}
)
# Verdicts that leave nothing to check: left out of the pass rate's denominator.
EXCUSED_VERDICTS = frozenset({Verdict.EXEMPT, Verdict.ON_LEAVE})


class CaptureOutcome(StrEnum):
    """What the device saw at the bed; the server turns it into a `Verdict`."""

    FACE_CAPTURED = "face_captured"  # a face was captured, with embedding, liveness and crop
    BED_EMPTY = "bed_empty"          # the nurse or the camera reported nobody in the bed
    NO_FACE = "no_face"              # the burst ended without a usable face
    SPOOF = "spoof"                  # a face was seen but failed liveness


class FlagKind(StrEnum):
    ABSENT = "absent"
    IMPERSONATED = "impersonated"
    SPOOF = "spoof"
    UNRECOGNISED = "unrecognised"
    OVERDUE = "overdue"
    LATE = "late"
    DEVICE_OFFLINE = "device_offline"
    DUPLICATE_ADMISSION = "duplicate_admission"   # one insured person admitted in two hospitals (叠床)
    DUPLICATE_IDENTITY = "duplicate_identity"     # one face enrolled under two insurance numbers
    TAMPERED_EVIDENCE = "tampered_evidence"       # reported embedding differs from the uploaded crop
    REPLAYED_PHOTO = "replayed_photo"             # same image or near-identical embedding reused
    CROSS_HOSPITAL_FACE = "cross_hospital_face"   # same face captured in two hospitals within a window
    INELIGIBLE = "ineligible"                     # not insured on the admission date, or unknown to the registry
    LEAVE_OVERDUE = "leave_overdue"               # not back by the end of an approved leave
    LEAVE_OVERNIGHT = "leave_overnight"           # a leave over a night where the agreement forbids it
    LIVENESS_MISMATCH = "liveness_mismatch"       # key frames do not show the liveness the device reported
    PLACE_MISMATCH = "place_mismatch"             # the capture's scene matches no reference of the bed's ward
    FACE_REPLACED = "face_replaced"               # an enrolled face replaced at the desk: reviewed, never silent
    IDENTITY_CHANGED = "identity_changed"         # a capture session's face is not one person throughout
    REGISTRY_MISMATCH = "registry_mismatch"       # a hospital's HIS states insurance the bureau's registry does not
    REPLAYED_EVIDENCE = "replayed_evidence"       # a frame, crop, scene or sequence of an earlier capture sent again


VERDICT_FLAG: dict[Verdict, FlagKind] = {
    Verdict.ABSENT: FlagKind.ABSENT,
    Verdict.IMPERSONATED: FlagKind.IMPERSONATED,
    Verdict.SPOOF: FlagKind.SPOOF,
    Verdict.UNRECOGNISED: FlagKind.UNRECOGNISED,
    Verdict.OVERDUE: FlagKind.OVERDUE,
}


class ExemptionReason(StrEnum):
    ICU = "icu"
    SURGERY = "surgery"
    NEWBORN = "newborn"
    EXAMINATION = "examination"
    OTHER = "other"
