"""Shared set-up of the console tests: a small county with users, devices that answer over HTTP, a signed-in
browser-like client (form sign-in with its CSRF token)."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import numpy as np
from PIL import Image, ImageDraw
from sqlmodel import Session

from models.faces.engines import SYNTHETIC
from models.verdicts import CaptureOutcome
from models.wire import DEVICE_PREFIX, LivenessReport, ResultUpload, TaskBatch
from server.accounts.tables import Role
from server.checks.synthetic import synthetic_crop
from server.persons.tables import FaceEmbedding
from server.simulation.embeddings import identity, photo_of
from tests import factories

LIVE = LivenessReport(is_live=True, score=0.9, blink_detected=True, passive_score=0.9)
# ok -> verified, away -> absent flag, other -> impersonated flag (with a captured crop)
ROLES = ("ok", "away", "other")


def placeholder_jpeg(label: str, color: tuple[int, int, int]) -> bytes:
    """A generated stand-in picture (no real face): tests ship no third-party images."""
    image = Image.new("RGB", (160, 160), color)
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 30, 120, 130), outline=(255, 255, 255), width=4)
    draw.text((10, 140), label, fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@dataclass
class ConsoleWorld:
    county: str
    hospital_ids: list[int]
    ward_ids: list[int]
    codes: list[str]
    roles: dict[int, tuple[str, np.ndarray]] = field(default_factory=dict)  # admission id -> (role, face)


def build(db: Session, *, hospitals_n: int = 2) -> ConsoleWorld:
    """Hospitals with one ward of three patients (enrolled thumbnails), one user per role, pairing codes."""
    world = factories.build_world(db, hospitals_n=hospitals_n, patients_per_ward=list(ROLES))
    for key, patient in world.patients.items():
        thumbnail = placeholder_jpeg(f"enrolled {key}", (40, 90, 160))
        db.add(FaceEmbedding(insured_person_id=patient.person_id, vector=patient.face.astype("<f4").tobytes(),
                             source="test-thumbnail", thumbnail_jpeg=thumbnail))
    db.commit()
    factories.user(db, "sup", Role.SUPERVISOR)
    factories.user(db, "rev", Role.REVIEWER)
    for n, hospital_id in enumerate(world.hospital_ids, start=1):
        factories.user(db, f"staff{n}", Role.HOSPITAL_STAFF, hospital_id=hospital_id)
    codes = [factories.pairing_code(db, ward) for ward in world.ward_ids]
    roles = {p.admission_id: (key.split(":")[1], p.face) for key, p in world.patients.items()}
    return ConsoleWorld(world.county, world.hospital_ids, world.ward_ids, codes, roles)


def pair(base_url: str, code: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    token = client.post(f"{DEVICE_PREFIX}/pair", json={"code": code, "name": "tablet"}).raise_for_status().json()
    client.headers["authorization"] = f"Bearer {token['token']}"
    return client


def _upload_for(task, role: str, face: np.ndarray, rng: np.random.Generator) -> ResultUpload:
    base = {"idempotency_key": uuid.uuid4().hex, "task_id": task.task_id, "nonce": task.nonce,
            "captured_at": datetime.now(UTC), "engine_version": SYNTHETIC.tag}
    if role == "away":
        return ResultUpload(outcome=CaptureOutcome.BED_EMPTY, note="床位无人", **base)
    embedding = photo_of(face, rng) if role == "ok" else identity(rng)
    crop = synthetic_crop(embedding)  # the server decides on the crop: a labelled synthetic one in tests
    return ResultUpload(outcome=CaptureOutcome.FACE_CAPTURED, embedding=list(embedding), liveness=LIVE,
                        face_crop_jpeg_b64=base64.b64encode(crop).decode(),
                        evidence_sha256=hashlib.sha256(crop).hexdigest(),
                        scene_jpeg_b64=factories.scene_b64(task.bed_id), **base)


def answer_once(device: httpx.Client, world: ConsoleWorld, rng: np.random.Generator, wait_s: float = 5.0) -> int:
    """Fetches the ward's tasks and answers each; returns how many were answered."""
    batch = TaskBatch.model_validate(device.get(f"{DEVICE_PREFIX}/tasks", params={"wait_s": wait_s})
                                     .raise_for_status().json())
    for task in batch.tasks:
        role, face = world.roles[task.admission_id]
        body = _upload_for(task, role, face, rng).model_dump_json()
        device.post(f"{DEVICE_PREFIX}/results", content=body,
                    headers={"content-type": "application/json"}).raise_for_status()
    return len(batch.tasks)


class DeviceFleet(threading.Thread):
    """One thread answering for every ward until every ward has answered once (or stop)."""

    def __init__(self, base_url: str, world: ConsoleWorld) -> None:
        super().__init__(daemon=True)
        self.devices = [pair(base_url, code) for code in world.codes]
        self.world, self.stop = world, threading.Event()
        self.rng = np.random.default_rng(7)
        self.errors: list[str] = []

    def run(self) -> None:
        pending = list(self.devices)
        while pending and not self.stop.is_set():
            try:
                pending = [d for d in pending if answer_once(d, self.world, self.rng, wait_s=2.0) == 0]
            except httpx.HTTPError as e:
                self.errors.append(repr(e))
                return

    def close(self) -> None:
        self.stop.set()
        self.join(timeout=30)
        for device in self.devices:
            device.close()


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, "page has no CSRF token"
    return found.group(1)


def sign_in(base_url: str, username: str) -> httpx.Client:
    """A client signed in through the console form, cookies and all, as a browser would be."""
    client = httpx.Client(base_url=base_url, timeout=30)
    form = client.get("/console/sign-in")
    response = client.post("/console/sign-in", data={"csrf_token": csrf_of(form), "username": username,
                                                     "password": factories.PASSWORD, "next": "/console/flags"})
    assert response.status_code == 303, response.text
    return client
