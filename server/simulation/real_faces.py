"""Real face images for part of a simulated county, when a face image folder is at hand.

The rest of the county runs on synthetic embeddings; these beds run the real engine end to end: the person
is enrolled from real photos through the enrollment gates, and at the check the device runs a capture
burst on another photo (the patient), a photo of someone else (an impersonator) or a photo of a screen (a
spoof), with crop and evidence hash, exactly as `bedcheck-edge check` does. Liveness: the real challenge
judge runs on the still photo (a spoof bed fails it, as a photo held to a tablet does); a present patient's
challenge cannot be shown by a still, so it is declared simulated (see `devices.py`).

Layout expected (that of `../shared/faces`): `people/<person>/*.jpg` with at least 4 photos each, and
`spoof/spoof_*.jpg`. Images are read where they are; nothing is copied.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sqlmodel import Session, col, update

from models.errors import BedcheckError
from models.faces import crop_to_jpeg
from models.faces.decode import load_image_file
from models.faces.engine import BurstResult, FaceEngine
from models.faces.liveness.actions import Action
from models.faces.liveness.judge import check_challenge
from models.faces.liveness.passive import LivenessResult
from models.faces.liveness.track import default_landmarker, track_frames
from models.settings import EngineSettings
from server.persons.service import add_embedding
from server.persons.tables import FaceEmbedding
from server.simulation.county import County, Truth

log = logging.getLogger("bedcheck.simulation")

ENROLL_PHOTOS = 2  # as the admission desk takes them (issue 28)
PROBE_INDEX = 4  # the fifth photo: never one of the enrolled ones
IMPOSTOR_PROBE_INDEX = 5
THUMBNAIL_PX = 96  # as enrollment keeps for reviewers


def default_faces_dir() -> Path | None:
    """BEDCHECK_FACES_DIR, else ../shared/faces beside the working directory, when it holds people/."""
    candidate = Path(os.environ.get("BEDCHECK_FACES_DIR", "../shared/faces"))
    return candidate if (candidate / "people").is_dir() else None


@dataclass(frozen=True)
class RealBed:
    probe: Path
    truth: Truth


class RealFaces:
    """Which beds of a county show real photos, and the engine the simulated devices check them with."""

    def __init__(self, engine: FaceEngine) -> None:
        self.engine = engine
        self.beds: dict[int, RealBed] = {}  # by admission id
        # One engine for every device thread; dlib's models are not documented as thread-safe.
        self._lock = threading.Lock()

    def with_engine(self, settings: EngineSettings) -> RealFaces:
        """The same beds checked with another engine (a county re-encoded after it was enrolled); self when the
        engine is the same one."""
        if settings == self.engine.settings:
            return self
        other = RealFaces(FaceEngine(settings))
        other.beds = dict(self.beds)
        return other

    def check(self, bed: RealBed, challenge: list[Action]) -> tuple[BurstResult, LivenessResult]:
        """The engine on the bed's photo, and the real liveness judge on it held still for a second.

        A still photo never does a challenge: shown to the camera (a spoof bed) it fails as it would at a real
        bed. The patient of a present bed would follow the challenge, which a still cannot show: the caller
        declares that liveness simulated (accepted only by a simulation's server).
        """
        with self._lock:
            image = load_image_file(bed.probe, self.engine.settings)
            frames = [image] * 15
            burst = self.engine.check_burst(frames[:3])
            track = track_frames(frames, [i / 15 for i in range(15)], default_landmarker(self.engine.settings),
                                 self.engine.settings)
            return burst, check_challenge(track, challenge, self.engine.settings,
                                          passive_score=burst.liveness.passive_score, cues=burst.liveness.cues)


def attach_real_faces(db: Session, county: County, faces_dir: Path, *, present: int = 10, impersonations: int = 3,
                      spoofs: int = 2, engine_settings: EngineSettings | None = None) -> RealFaces:
    """Re-enrolls a few beds' persons from real photos and makes their checks run on real images.

    The engine settings are the server's (calibration file included), so device and server agree."""
    engine = FaceEngine(engine_settings or EngineSettings.load())
    real = RealFaces(engine)
    people = sorted(p for p in (faces_dir / "people").iterdir()
                    if p.is_dir() and len(list(p.glob("*.jpg"))) > IMPOSTOR_PROBE_INDEX)
    screens = sorted((faces_dir / "spoof").glob("spoof_*.jpg"))
    if len(people) < 2:
        return real
    wanted = {Truth.PRESENT: present, Truth.IMPERSONATION: impersonations, Truth.SPOOF: spoofs if screens else 0}
    # Frauds first: with fewer people than beds wanted, the flags a reviewer opens get the real photos
    # (present patients' crops are dropped after their check anyway).
    order = {Truth.IMPERSONATION: 0, Truth.SPOOF: 1, Truth.PRESENT: 2}
    chosen = [bed for bed in sorted(county.beds.values(), key=lambda b: (order.get(b.truth, 3), b.admission_id))
              if bed.ward_id not in county.offline_ward_ids and bed.truth in wanted]
    # Only people whose photos pass the enrollment gates: an impersonation's probe is the next person's photo,
    # and that person must be enrolled for the evidence check to name them.
    encoded = {person: _encodings(engine, person) for person in people}
    people = [person for person in people if encoded[person]]
    used = 0
    for bed in chosen:
        if wanted[bed.truth] == 0 or used >= len(people):
            continue
        person = people[used]
        _enroll(db, engine, bed.person_id, encoded[person])
        wanted[bed.truth] -= 1
        if bed.truth == Truth.PRESENT:
            probe = _photos(person)[PROBE_INDEX]
        elif bed.truth == Truth.IMPERSONATION:
            # Someone else enrolled in the county (the next person, enrolled for another bed): the evidence
            # check names them. Not their own probe photo, which another bed shows.
            probe = _photos(people[(used + 1) % len(people)])[IMPOSTOR_PROBE_INDEX]
        else:
            probe = screens[used % len(screens)]
        real.beds[bed.admission_id] = RealBed(probe, bed.truth)
        used += 1
    db.commit()
    log.info("real faces: %d beds", len(real.beds))
    return real


def _photos(person: Path) -> list[Path]:
    return sorted(person.glob("*.jpg"))


def _encodings(engine: FaceEngine, person: Path) -> list[tuple[np.ndarray, bytes, bytes]]:
    encodings: list[tuple[np.ndarray, bytes, bytes]] = []
    for photo in _photos(person)[:ENROLL_PHOTOS]:
        try:
            enrolled = engine.enroll_face(load_image_file(photo, engine.settings))
        except BedcheckError:
            continue  # a photo failing the gates is skipped, as bulk enrollment does
        # The chip (the evidence-size crop) as enrollment keeps it, so `enroll reencode` can change engine.
        encodings.append((enrolled.encoding, _thumbnail(enrolled.crop_rgb), crop_to_jpeg(enrolled.crop_rgb)))
    return encodings


def _enroll(db: Session, engine: FaceEngine, person_id: int, encodings: list[tuple[np.ndarray, bytes, bytes]]) -> None:
    db.execute(update(FaceEmbedding).where(col(FaceEmbedding.insured_person_id) == person_id)
               .values(is_active=False))
    for encoding, thumbnail, chip in encodings:
        add_embedding(db, person_id=person_id, vector=encoding, source="simulation:real", engine_version=engine.tag,
                      thumbnail_jpeg=thumbnail, chip_jpeg=chip)


def _thumbnail(crop_rgb: np.ndarray) -> bytes:
    """The reviewer's thumbnail of an enrolled face (kept in the database, like enrollment's; never a file)."""
    image = Image.fromarray(np.ascontiguousarray(crop_rgb))
    image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    return crop_to_jpeg(np.asarray(image))
