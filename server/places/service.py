"""References, fingerprints and geofences; the scene frame checked at upload and stored with its result."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sqlmodel import Session, col, select

from models.errors import InvalidInput, NotFound, ReferenceAlreadyDecided, ReferenceTooPlain
from models.faces.decode import check_image_header, decode_image
from models.place.features import extract_features
from models.settings import EngineSettings
from models.wire.place import PlaceCues, ReferenceStatus, SceneSource
from server.admissions.tables import Admission
from server.audit import service as audit
from server.db import utcnow
from server.hospitals.tables import Bed, Hospital, Ward
from server.places.tables import BedReference, HospitalGeofence, WardFingerprint
from server.settings import ServerSettings


def scene_limits(settings: ServerSettings, engine_settings: EngineSettings) -> EngineSettings:
    """Decoding limits for scene frames: a small JPEG, not a photo (a bomb is refused from its header)."""
    return engine_settings.model_copy(update={"max_image_bytes": settings.scene_max_bytes,
                                              "max_image_pixels": settings.scene_max_pixels})


def decode_scene_b64(data_b64: str, limits: EngineSettings, field: str = "scene_jpeg_b64") -> bytes:
    """The scene's bytes, refused when not base64 or not an image within `limits` (header only)."""
    try:
        data = base64.b64decode(data_b64, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInput(f"{field} is not valid base64") from e
    check_image_header(data, limits)
    return data


def add_reference(db: Session, *, bed_id: int, ward_id: int, jpeg_b64: str, source: SceneSource,
                  cues: PlaceCues | None, actor: str, settings: ServerSettings,
                  engine_settings: EngineSettings) -> BedReference:
    """Stores a reference frame of a bed of `ward_id`, refused when it shows too little to match again.

    It waits, inactive, for a bureau user's approval (`decide_reference`): the hospital holds the device, and a
    reference it could activate itself would let a room at home pass as the bed."""
    bed = db.get(Bed, bed_id)
    if bed is None or bed.ward_id != ward_id:
        raise NotFound("bed not found in this ward")
    ward = db.get(Ward, ward_id)
    assert ward is not None
    limits = scene_limits(settings, engine_settings)
    jpeg = decode_scene_b64(jpeg_b64, limits)
    features = extract_features(decode_image(jpeg, limits))
    if len(features) < settings.reference_min_features:
        raise ReferenceTooPlain(features=len(features), required=settings.reference_min_features)
    reference = BedReference(bed_id=bed_id, ward_id=ward_id, hospital_id=ward.hospital_id, source=source,
                             scene_jpeg=jpeg, feature_count=len(features),
                             cues=cues.model_dump(mode="json") if cues else {}, created_by=actor,
                             status=ReferenceStatus.PENDING, is_active=False)
    db.add(reference)
    db.flush()
    audit.record(db, actor=actor, action="place.reference_added", object_type="bed", object_id=bed_id,
                 data={"reference_id": reference.id, "source": source.value, "features": len(features)})
    db.commit()
    return reference


def decide_reference(db: Session, *, reference_id: int, approve: bool, actor: str, note: str = "") -> BedReference:
    """Approves (puts in force) or rejects a pending reference; audited; commits. Bureau users only (routes)."""
    reference = db.get(BedReference, reference_id)
    if reference is None:
        raise NotFound("reference not found")
    if reference.status != ReferenceStatus.PENDING:
        raise ReferenceAlreadyDecided(status=reference.status.value)
    reference.status = ReferenceStatus.APPROVED if approve else ReferenceStatus.REJECTED
    reference.is_active = approve
    reference.decided_by, reference.decided_at, reference.decision_note = actor, utcnow(), note.strip()[:200]
    db.add(reference)
    audit.record(db, actor=actor, action="place.reference_approved" if approve else "place.reference_rejected",
                 object_type="bed_reference", object_id=reference_id,
                 data={"bed_id": reference.bed_id, "hospital_id": reference.hospital_id,
                       "created_by": reference.created_by})
    db.commit()
    return reference


def pending_references(db: Session, *, hospital_id: int | None = None) -> list[BedReference]:
    """References waiting for a bureau user's decision, oldest first (one hospital's, or every one)."""
    query = select(BedReference).where(BedReference.status == ReferenceStatus.PENDING)
    if hospital_id is not None:
        query = query.where(BedReference.hospital_id == hospital_id)
    return list(db.exec(query.order_by(col(BedReference.created_at), col(BedReference.id))))


def beds_without_reference(db: Session, *, hospital_id: int | None = None) -> list[tuple[Bed, Ward, Hospital]]:
    """Beds of current admissions with no approved reference yet: the place check's setup tasks."""
    approved = select(BedReference.bed_id).where(BedReference.is_active == True)  # noqa: E712
    query = (select(Bed, Ward, Hospital).join(Ward, col(Ward.id) == col(Bed.ward_id))
             .join(Hospital, col(Hospital.id) == col(Ward.hospital_id))
             .where(col(Bed.id).in_(select(Admission.bed_id).where(col(Admission.discharged_at).is_(None))),
                    col(Bed.id).not_in(approved)))
    if hospital_id is not None:
        query = query.where(Hospital.id == hospital_id)
    return [(bed, ward, hospital) for bed, ward, hospital in
            db.exec(query.order_by(col(Hospital.id), col(Ward.id), col(Bed.label)))]


def references_for(db: Session, *, ward_id: int, source: SceneSource) -> list[BedReference]:
    """The ward's active references of one source kind, oldest first."""
    return list(db.exec(select(BedReference).where(BedReference.ward_id == ward_id, BedReference.source == source,
                                                   BedReference.is_active == True)  # noqa: E712
                        .order_by(col(BedReference.id))))


def enroll_wifi(db: Session, *, ward_id: int, bssids: list[str], actor: str) -> WardFingerprint:
    """Adds the networks a device saw (at pairing) to its ward's fingerprint; the caller commits."""
    fingerprint = db.get(WardFingerprint, ward_id) or WardFingerprint(ward_id=ward_id, wifi_bssids=[])
    merged = sorted(set(fingerprint.wifi_bssids) | set(bssids))
    added = len(merged) - len(fingerprint.wifi_bssids)
    fingerprint.wifi_bssids, fingerprint.updated_at = merged, utcnow()
    db.add(fingerprint)
    audit.record(db, actor=actor, action="place.wifi_enrolled", object_type="ward", object_id=ward_id,
                 data={"added": added, "total": len(merged)})
    return fingerprint


def set_geofence(db: Session, *, hospital_id: int, lat: float, lon: float, radius_m: float,
                 actor: str) -> HospitalGeofence:
    """Sets the circle around a hospital that location fixes are compared with; commits."""
    if db.get(Hospital, hospital_id) is None:
        raise NotFound("hospital not found")
    fence = db.get(HospitalGeofence, hospital_id) or HospitalGeofence(hospital_id=hospital_id, lat=lat, lon=lon)
    fence.lat, fence.lon, fence.radius_m, fence.updated_at = lat, lon, radius_m, utcnow()
    db.add(fence)
    audit.record(db, actor=actor, action="place.geofence_set", object_type="hospital", object_id=hospital_id,
                 data={"radius_m": radius_m})
    db.commit()
    return fence


def scene_row(result_id: int, scene: bytes, source: SceneSource, cues: PlaceCues | None) -> dict[str, Any]:
    """A `scene_evidence` row for a bulk insert beside its result."""
    return {"result_id": result_id, "source": source, "scene_jpeg": scene,
            "cues": cues.model_dump(mode="json") if cues else {}, "place_details": {}}
