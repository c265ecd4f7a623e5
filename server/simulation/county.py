"""A simulated county: hospitals, wards, beds, insured persons with enrolled embeddings, admissions and
the seeded truth of each bed (present, bed-hanging, impersonated, spoof, exempt, on approved leave, device
offline), each person's insurance (a few not insured on the admission date) and the fund's payment per day."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

import numpy as np
from sqlalchemy import insert
from sqlmodel import Session, select

from models.faces.engines import SYNTHETIC
from models.verdicts import ExemptionReason
from models.wire.place import ReferenceStatus, SceneSource
from server.admissions.eligibility import flag_ineligible
from server.admissions.tables import Admission, Exemption, Leave
from server.db import utcnow
from server.hospitals import service as hospital_service
from server.hospitals.tables import Bed, HospitalKind, Ward
from server.persons.service import vector_to_bytes
from server.persons.tables import FaceEmbedding, InsuranceStatus, InsuredPerson
from server.places.tables import BedReference
from server.simulation.embeddings import identity, photo_of
from server.simulation.scenes import reference_jpeg

ENROLLED_PHOTOS = 2  # per person, as the admission desk takes them


class Truth(StrEnum):
    PRESENT = "present"
    BED_HANGING_EMPTY = "bed_hanging_empty"      # the nurse finds the bed empty
    BED_HANGING_NO_FACE = "bed_hanging_no_face"  # the bed camera's burst finds nobody
    BED_HANGING_SILENT = "bed_hanging_silent"    # nobody answers for the bed before the deadline
    IMPERSONATION = "impersonation"
    SPOOF = "spoof"
    EXEMPT = "exempt"
    ON_LEAVE = "on_leave"                        # away on a leave approved before the check: the bed is empty
    CARRIED_HOME = "carried_home"                # the patient is at home and the tablet was carried there (实地)


@dataclass
class CountySpec:
    name: str = "示范县"  # the demo is read in a Chinese console: its places have Chinese names
    hospitals: int = 46
    public_hospitals: int = 28
    inpatients: int = 5000
    beds_per_ward: int = 30
    # When set, the county has exactly this many wards (one device each), spread over the hospitals;
    # beds_per_ward is then ignored.
    wards: int | None = None
    bed_hanging_rate: float = 0.03
    silent_rate: float = 0.0  # beds nobody answers for: they close at the deadline, so completion waits for it
    impersonation_rate: float = 0.01
    spoof_rate: float = 0.002
    exempt_rate: float = 0.02
    on_leave_rate: float = 0.004
    # Persons whose insurance was suspended or had ended before their admission (drawn among present patients).
    ineligible_rate: float = 0.004
    carried_home_rate: float = 0.002
    # A reference frame per bed (synthetic rooms, server/simulation/scenes.py), as `bedcheck-edge reference`
    # would have captured: the place check needs them.
    place_references: bool = True
    offline_wards: int = 3
    seed: int = 7


# Wards as a county hospital names them; a hospital with more wards than departments numbers the second round.
DEPARTMENTS = ("内科", "外科", "骨科", "妇产科", "儿科", "心血管内科", "呼吸内科", "消化内科", "神经内科", "肿瘤科",
               "康复科", "中医科")


def hospital_name(county: str, index: int, public: int) -> str:
    """`示范县第3人民医院` for public hospitals, `示范县第2民营医院` for private ones (numbered within each)."""
    return f"{county}第{index + 1}人民医院" if index < public else f"{county}第{index - public + 1}民营医院"


def ward_name(index: int) -> str:
    """`内科病区`, `外科病区`, ..., then `内科二病区`."""
    department = DEPARTMENTS[index % len(DEPARTMENTS)]
    round_ = index // len(DEPARTMENTS)
    return f"{department}病区" if round_ == 0 else f"{department}{'二三四五六七八九'[min(round_ - 1, 8)]}病区"


@dataclass
class SeededBed:
    admission_id: int
    person_id: int
    ward_id: int
    bed_id: int
    truth: Truth


@dataclass
class County:
    county_name: str
    hospital_ids: list[int]
    ward_ids: list[int]
    offline_ward_ids: set[int]
    beds: dict[int, SeededBed] = field(default_factory=dict)   # by admission id
    identities: dict[int, np.ndarray] = field(default_factory=dict)  # person id -> true face
    ineligible: set[int] = field(default_factory=set)  # admission ids whose person was not insured
    fund_per_day_fen: dict[int, int] = field(default_factory=dict)  # admission id -> what the HIS reports


def build_county(db: Session, spec: CountySpec, *, province: str = "示范省", city: str = "示范市",
                 code_prefix: str = "H") -> County:
    """Creates the county in bulk and returns the truth a simulation answers from."""
    rng, pick = np.random.default_rng(spec.seed), random.Random(spec.seed)
    region = hospital_service.get_or_create_county(db, province=province, city=city, county=spec.name)
    hospitals = [hospital_service.upsert_hospital(
        db, code=f"{code_prefix}{i + 1:03d}", name=hospital_name(spec.name, i, spec.public_hospitals),
        county_id=region.id or 0,
        kind=HospitalKind.PUBLIC if i < spec.public_hospitals else HospitalKind.PRIVATE)
        for i in range(spec.hospitals)]
    per_hospital = [spec.inpatients // spec.hospitals + (1 if i < spec.inpatients % spec.hospitals else 0)
                    for i in range(spec.hospitals)]
    beds: list[tuple[int, int, int]] = []  # (hospital id, ward id, bed id)
    for i, (hospital, count) in enumerate(zip(hospitals, per_hospital, strict=True)):
        ward_sizes = _ward_sizes(spec, i, count)
        for w, n in enumerate(ward_sizes):
            ward = Ward(hospital_id=hospital.id or 0, code=f"W{w + 1:02d}", name=ward_name(w))
            db.add(ward)
            db.flush()
            db.execute(insert(Bed), [{"ward_id": ward.id, "label": f"{b + 1:02d}"} for b in range(n)])
            beds += [(hospital.id or 0, ward.id or 0, bed_id) for bed_id in
                     db.exec(select(Bed.id).where(Bed.ward_id == ward.id).order_by(Bed.id))]
    if spec.place_references:
        add_references(db, beds)
    return _admit(db, spec, rng, pick, region.name, [h.id or 0 for h in hospitals], beds)


def add_references(db: Session, beds: list[tuple[int, int, int]]) -> None:
    """One reference frame per bed, rendered from the bed's id (devices render its scenes the same way).

    Rendering a room is ~8 ms of one core, most of a county's building time (a province's 100,000 beds: over
    13 minutes on one core), so the frames are rendered on every core; the same bytes either way."""
    for start, frames in zip(range(0, len(beds), 500), _rendered([b for _, _, b in beds]), strict=True):
        db.execute(insert(BedReference), [
            {"bed_id": b, "ward_id": w, "hospital_id": h, "source": SceneSource.TABLET, "scene_jpeg": frame,
             "feature_count": 0, "cues": {}, "created_by": "simulation", "created_at": utcnow(), "is_active": True,
             # set up with the county by the bureau's own simulation: approved from the start
             "status": ReferenceStatus.APPROVED, "decided_by": "simulation", "decision_note": ""}
            for (h, w, b), frame in zip(beds[start:start + 500], frames, strict=True)])


def _rendered(bed_ids: list[int], chunk: int = 500) -> Iterator[list[bytes]]:
    """The reference frames of `bed_ids`, `chunk` at a time, rendered by forked processes (one per core)."""
    chunks = [bed_ids[i:i + chunk] for i in range(0, len(bed_ids), chunk)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 2 or len(bed_ids) < 2 * chunk:
        yield from ([reference_jpeg(b) for b in c] for c in chunks)
        return
    # fork: the children only render (no database), and leave by os._exit, closing nothing they inherited.
    with ProcessPoolExecutor(max_workers=cores, mp_context=mp.get_context("fork")) as pool:
        yield from pool.map(_render_chunk, chunks)


def _render_chunk(bed_ids: list[int]) -> list[bytes]:
    return [reference_jpeg(b) for b in bed_ids]


def _ward_sizes(spec: CountySpec, hospital_index: int, beds: int) -> list[int]:
    if spec.wards is None:
        return [min(spec.beds_per_ward, beds - start) for start in range(0, beds, spec.beds_per_ward)]
    wards = max(1, spec.wards // spec.hospitals + (1 if hospital_index < spec.wards % spec.hospitals else 0))
    wards = min(wards, max(beds, 1))
    return [beds // wards + (1 if w < beds % wards else 0) for w in range(wards)]


def _admit(db: Session, spec: CountySpec, rng: np.random.Generator, pick: random.Random, county: str,
           hospital_ids: list[int], beds: list[tuple[int, int, int]]) -> County:
    now = utcnow()
    tag = f"{spec.seed:04d}{pick.randrange(10**6):06d}"
    db.execute(insert(InsuredPerson), [{"insurance_number": f"SIM{tag}{i:07d}", "name": f"患者{i}",
                                        "created_at": now, "insurance_status": InsuranceStatus.ACTIVE,
                                        "insurance_type": pick.choice(["职工医保", "城乡居民医保"]),
                                        "insured_from": date(2020, 1, 1)} for i in range(len(beds))])
    person_ids = list(db.exec(select(InsuredPerson.id).where(InsuredPerson.insurance_number.startswith(f"SIM{tag}"))
                              .order_by(InsuredPerson.id)))
    faces = {pid: identity(rng) for pid in person_ids}
    # Two photos per person, as the admission desk takes them (issue 28): a template, not the face itself.
    db.execute(insert(FaceEmbedding), [{"insured_person_id": pid, "vector": vector_to_bytes(photo_of(faces[pid], rng)),
                                        "source": "simulation", "engine_version": SYNTHETIC.tag,
                                        "photo_sha256": "", "is_active": True, "created_at": now}
                                       for pid in person_ids for _ in range(ENROLLED_PHOTOS)])
    db.execute(insert(Admission), [{"insured_person_id": pid, "hospital_id": h, "ward_id": w, "bed_id": b,
                                    "his_admission_no": f"A{tag}{i:07d}", "admitted_at": now - timedelta(days=2),
                                    "discharged_at": None, "fund_per_day_fen": 100 * pick.randrange(80, 600)}
                                   for i, (pid, (h, w, b)) in enumerate(zip(person_ids, beds, strict=True))])
    admissions = list(db.exec(select(Admission).where(Admission.his_admission_no.startswith(f"A{tag}"))))
    ward_ids = sorted({w for _, w, _ in beds})
    county = County(county, hospital_ids, ward_ids, set(pick.sample(ward_ids, min(spec.offline_wards, len(ward_ids)))),
                    identities=faces)
    truths = _draw_truths(len(admissions), spec, pick)
    for admission, truth in zip(admissions, truths, strict=True):
        county.beds[admission.id or 0] = SeededBed(admission.id or 0, admission.insured_person_id,
                                                   admission.ward_id, admission.bed_id, truth)
        county.fund_per_day_fen[admission.id or 0] = admission.fund_per_day_fen or 0
        if truth == Truth.EXEMPT:
            db.add(Exemption(admission_id=admission.id or 0, reason=pick.choice(list(ExemptionReason)),
                             note="simulated", starts_at=now - timedelta(hours=1), created_by="simulation"))
        if truth == Truth.ON_LEAVE:  # registered by the ward before the spot check, as the agreement asks
            db.add(Leave(admission_id=admission.id or 0, hospital_id=admission.hospital_id, starts_at=now,
                         ends_at=now + timedelta(hours=3), reason="外出办事", approved_by_doctor="主治医师",
                         approved_by_insurance_officer="医保科", created_by="simulation", created_at=now))
    _seed_ineligible(db, county, admissions, spec, pick)
    db.commit()
    return county


def _seed_ineligible(db: Session, county: County, admissions: list[Admission], spec: CountySpec,
                     pick: random.Random) -> None:
    """Some present patients' insurance ended or was suspended before admission; flagged as an import would."""
    present = [a for a in admissions if county.beds[a.id or 0].truth == Truth.PRESENT]
    chosen = pick.sample(present, min(len(present), round(len(admissions) * spec.ineligible_rate)))
    for admission in chosen:
        person = db.get(InsuredPerson, admission.insured_person_id)
        assert person is not None
        person.insurance_status = pick.choice([InsuranceStatus.SUSPENDED, InsuranceStatus.ENDED])
        person.insured_until = admission.admitted_at.date() - timedelta(days=pick.randrange(1, 90))
        db.add(person)
        county.ineligible.add(admission.id or 0)
    db.flush()
    flag_ineligible(db, admission_ids=[a.id or 0 for a in admissions])


def _draw_truths(n: int, spec: CountySpec, pick: random.Random) -> list[Truth]:
    counts = {Truth.BED_HANGING_EMPTY: round(n * spec.bed_hanging_rate / 2),
              Truth.BED_HANGING_NO_FACE: round(n * spec.bed_hanging_rate) - round(n * spec.bed_hanging_rate / 2),
              Truth.BED_HANGING_SILENT: round(n * spec.silent_rate),
              Truth.IMPERSONATION: round(n * spec.impersonation_rate), Truth.SPOOF: round(n * spec.spoof_rate),
              Truth.EXEMPT: round(n * spec.exempt_rate), Truth.ON_LEAVE: round(n * spec.on_leave_rate),
              Truth.CARRIED_HOME: max(1, round(n * spec.carried_home_rate)) if spec.carried_home_rate else 0}
    truths = [t for t, c in counts.items() for _ in range(c)]
    truths += [Truth.PRESENT] * (n - len(truths))
    pick.shuffle(truths)
    return truths
