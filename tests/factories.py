"""Builders for tests: a small region with hospitals, wards, beds, enrolled persons and admissions."""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
from sqlmodel import Session

from models.faces.engines import SYNTHETIC
from models.verdicts import ExemptionReason
from server.accounts.service import create_user
from server.accounts.tables import Role, UserAccount
from server.admissions.tables import Admission, Exemption
from server.db import utcnow
from server.devices.service import create_pairing_code
from server.hospitals import service as hospitals
from server.hospitals.tables import HospitalKind
from server.persons.service import add_embedding, get_or_create_person
from server.simulation.county import add_references
from server.simulation.embeddings import identity
from server.simulation.scenes import scene_jpeg

PASSWORD = "test-password-1"


@dataclass
class Patient:
    admission_id: int
    person_id: int
    hospital_id: int
    ward_id: int
    bed_id: int
    face: np.ndarray


@dataclass
class World:
    county: str
    hospital_ids: list[int] = field(default_factory=list)
    ward_ids: list[int] = field(default_factory=list)
    patients: dict[str, Patient] = field(default_factory=dict)


def build_world(db: Session, *, hospitals_n: int, patients_per_ward: list[str] | None = None,
                county: str = "Test County", seed: int = 1, place_references: bool = True) -> World:
    """One ward per hospital; `patients_per_ward` names the patients put in every ward (e.g. ['a', 'b']).

    Every bed gets a reference frame of its (synthetic) room; `scene_b64(bed_id)` is a capture there."""
    rng = np.random.default_rng(seed)
    region = hospitals.get_or_create_county(db, province="P", city="C", county=county)
    world = World(county)
    for h in range(hospitals_n):
        hospital = hospitals.upsert_hospital(db, code=f"T{seed}H{h + 1}", name=f"Hospital {h + 1}",
                                             county_id=region.id or 0, kind=HospitalKind.PUBLIC)
        ward = hospitals.get_or_create_ward(db, hospital_id=hospital.id or 0, code="W1")
        world.hospital_ids.append(hospital.id or 0)
        world.ward_ids.append(ward.id or 0)
        for b, name in enumerate(patients_per_ward or []):
            bed = hospitals.get_or_create_bed(db, ward_id=ward.id or 0, label=f"{b + 1:02d}")
            face = identity(rng)
            person, _ = get_or_create_person(db, insurance_number=f"INS-{seed}-{h}-{name}", name=f"患者{name}")
            add_embedding(db, person_id=person.id or 0, vector=face, source="test", engine_version=SYNTHETIC.tag)
            admission = Admission(insured_person_id=person.id or 0, hospital_id=hospital.id or 0,
                                  ward_id=ward.id or 0, bed_id=bed.id or 0, his_admission_no=f"A{h}{name}",
                                  admitted_at=utcnow() - timedelta(days=1))
            db.add(admission)
            db.flush()
            world.patients[f"h{h + 1}:{name}"] = Patient(admission.id or 0, person.id or 0, hospital.id or 0,
                                                         ward.id or 0, bed.id or 0, face)
            if place_references:
                add_references(db, [(hospital.id or 0, ward.id or 0, bed.id or 0)])
    db.commit()
    return world


_CAPTURES = itertools.count(1_000)


def scene_b64(bed_id: int, *, at_home: bool = False, seed: int | None = None) -> str:
    """A scene key frame of a check at this bed (matches its reference), or somewhere else `at_home`.

    Each call without a seed is another capture (light, tablet, patient): the server keeps every scene's
    fingerprint, and the same frame sent for two checks is replayed evidence (server/evidence/fingerprints.py)."""
    rng = np.random.default_rng(next(_CAPTURES) if seed is None else seed)
    return base64.b64encode(scene_jpeg(bed_id, rng, at_home=at_home)).decode("ascii")


def exempt(db: Session, patient: Patient, reason: ExemptionReason = ExemptionReason.ICU) -> None:
    db.add(Exemption(admission_id=patient.admission_id, reason=reason, note="test",
                     starts_at=utcnow() - timedelta(minutes=5), created_by="test"))
    db.commit()


def user(db: Session, username: str, role: Role, hospital_id: int | None = None) -> UserAccount:
    created = create_user(db, username=username, password=PASSWORD, role=role, hospital_id=hospital_id)
    db.commit()
    return created


def pairing_code(db: Session, ward_id: int) -> str:
    return create_pairing_code(db, ward_id=ward_id, ttl_s=600, actor="test")


def synthetic_evidence(embedding: np.ndarray | list[float], bed_id: int | None = None) -> dict[str, str]:
    """The evidence fields of a face result: the labelled synthetic crop a test server accepts and, for a
    capture at `bed_id`, a scene frame matching that bed's reference."""
    import base64
    import hashlib

    from server.checks.synthetic import synthetic_crop

    crop = synthetic_crop(embedding)
    from models.faces.engines import SYNTHETIC

    fields = {"face_crop_jpeg_b64": base64.b64encode(crop).decode("ascii"),
              "evidence_sha256": hashlib.sha256(crop).hexdigest(), "engine_version": SYNTHETIC.tag}
    if bed_id is not None:
        fields["scene_jpeg_b64"] = scene_b64(bed_id)
    return fields


def blank_session(frames: int = 10, prompts_s: tuple[float, ...] = (1.5, 5.0)) -> Any:
    """A well-formed capture session of grey face regions (issue 25): what a device that films nothing would
    send; the schema and the upload accept it, the server's re-judgement does not."""
    import base64
    import hashlib
    import io

    from PIL import Image

    from models.wire import CaptureSession, FaceBox, SessionFrame

    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (128, 128, 128)).save(buffer, format="JPEG")
    jpeg = buffer.getvalue()
    region = FaceBox(left=100, top=100, right=292, bottom=292)
    box = FaceBox(left=140, top=140, right=252, bottom=252)
    return CaptureSession(frame_width=640, frame_height=480, prompts_s=list(prompts_s), crop_frame=0,
                          scene_time_s=0.0, frames=[
                              SessionFrame(time_s=round(0.2 * i, 3), region=region, box=box,
                                           jpeg_b64=base64.b64encode(jpeg).decode("ascii"),
                                           sha256=hashlib.sha256(jpeg).hexdigest()) for i in range(frames)])
