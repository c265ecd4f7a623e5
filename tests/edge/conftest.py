"""Edge fixtures: a ward whose patients are enrolled with embeddings of real photos, a real server process,
and the edge client run as its own process (`python -m edge_client`) so it can be SIGKILLed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import update
from sqlmodel import Session, func, select

from models.faces.decode import load_image_file
from models.faces.engine import FaceEngine
from models.settings import EngineSettings
from server.campaigns.service import create_campaign
from server.campaigns.tables import CheckTask
from server.checks.tables import CheckResult
from server.persons.service import add_embedding
from server.persons.tables import FaceEmbedding
from server.simulation.run import ServerProcess
from tests import factories
from tests.fixtures.live_server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
HAMILTON = "video/short_hamilton_clip.mp4"


@pytest.fixture(scope="session")
def face_engine() -> FaceEngine:
    return FaceEngine(EngineSettings())


def video_frames(path: Path, start_s: float, count: int, stride: int = 3) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_MSEC, start_s * 1000)
    frames = []
    index = 0
    while len(frames) < count and capture.grab():
        if index % stride == 0:
            frames.append(np.ascontiguousarray(cv2.cvtColor(capture.retrieve()[1], cv2.COLOR_BGR2RGB)))
        index += 1
    capture.release()
    return frames


@pytest.fixture(scope="session")
def enroll(faces_dir: Path, face_engine: FaceEngine) -> Callable[[str], np.ndarray]:
    """Enrolled embeddings of a real person: 'people/<id>' (photos 01-03), 'ageitgey/<id>' (all photos) or
    'video@<seconds>' (frames of the Hamilton clip at that time, never the frames the device will see) or
    'clip:<file>@<seconds>' (likewise, a clip of video_liveness/)."""
    cache: dict[str, np.ndarray] = {}

    def vectors(key: str) -> np.ndarray:
        if key not in cache:
            if key.startswith(("video@", "clip:")):
                name, at = key[5:].rsplit("@", 1) if key.startswith("clip:") else (HAMILTON, key[6:])
                folder = faces_dir / "video_liveness" if key.startswith("clip:") else faces_dir
                images = video_frames(folder / name, float(at), 3, stride=5)
                found = [face_engine.encode_largest(i) for i in images]
                cache[key] = np.stack([f for f in found if f is not None])
            else:
                photos = sorted((faces_dir / key).glob("*"))
                photos = photos[:3] if key.startswith("people/") else photos
                cache[key] = np.stack([face_engine.enroll_face(load_image_file(p, face_engine.settings)).encoding
                                       for p in photos])
        return cache[key]

    return vectors


def image_folder(tmp: Path, name: str, files: list[Path]) -> str:
    """A capture folder of symlinks: the images stay in ../shared/faces, never copied."""
    folder = tmp / name
    folder.mkdir(parents=True)
    for index, file in enumerate(files):
        (folder / f"{index:02d}{file.suffix}").symlink_to(file)
    return str(folder)


@dataclass
class Ward:
    world: factories.World
    ward_id: int
    bed_labels: dict[str, str]   # patient name -> bed label
    task_ids: dict[str, int]     # patient name -> task id of the spot check


def build_ward(engine, patients: dict[str, np.ndarray | None], *, spot_check: bool = True) -> Ward:
    """One hospital, one ward, a bed per patient enrolled with the given real embeddings; a spot check."""
    with Session(engine, expire_on_commit=False) as db:
        world = factories.build_world(db, hospitals_n=1, patients_per_ward=list(patients))
        for name, vectors in patients.items():
            person_id = world.patients[f"h1:{name}"].person_id
            # build_world enrolls a synthetic face; these patients have real ones instead.
            db.exec(update(FaceEmbedding).where(FaceEmbedding.insured_person_id == person_id)  # type: ignore[call-overload]
                    .values(is_active=False))
            for vector in vectors if vectors is not None else []:
                add_embedding(db, person_id=person_id, vector=vector, source="photo",
                              engine_version=EngineSettings().engine_tag)
        db.commit()
        task_ids: dict[str, int] = {}
        if spot_check:
            campaign = create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=600, actor="test")
            for task in db.exec(select(CheckTask).where(CheckTask.campaign_id == campaign.id)):
                name = next(n for n in patients if world.patients[f"h1:{n}"].admission_id == task.admission_id)
                task_ids[name] = task.id or 0
        labels = {n: f"{i + 1:02d}" for i, n in enumerate(patients)}
    return Ward(world, world.ward_ids[0], labels, task_ids)


def pairing_code(engine, ward_id: int) -> str:
    with Session(engine) as db:
        return factories.pairing_code(db, ward_id)


def verdicts(engine) -> dict[int, str]:
    with Session(engine) as db:
        return {t.id or 0: t.verdict.value for t in db.exec(select(CheckTask))}


def results_per_task(engine) -> dict[int, int]:
    with Session(engine) as db:
        rows = db.exec(select(CheckResult.task_id, func.count()).group_by(CheckResult.task_id)).all()
        return {int(task_id): int(n) for task_id, n in rows}


@pytest.fixture
def server_process(db_url: str) -> Iterator[Callable[..., ServerProcess]]:
    """Starts the real server as its own process (restartable on the same port); stopped after the test."""
    started: list[ServerProcess] = []

    def start(port: int = 0) -> ServerProcess:
        server = ServerProcess(db_url, sweep_interval_s=1.0, port=port, workers=1)
        started.append(server)
        return server

    yield start
    for server in started:
        # ServerProcess.stop() gives up after 10 s without reaping; a loaded machine needs longer.
        if server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=10)


def edge_env(state_dir: Path, **settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEDCHECK_EDGE_")}
    env["BEDCHECK_EDGE_STATE_DIR"] = str(state_dir)
    for key, value in settings.items():
        env[f"BEDCHECK_EDGE_{key.upper()}"] = json.dumps(value) if isinstance(value, dict) else str(value)
    return env


def edge_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_client", *args], env=env, cwd=REPO_ROOT, text=True,
                          capture_output=True, timeout=timeout)


class EdgeProcess:
    """`bedcheck-edge run` in its own process."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log = open(log_path, "a")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([sys.executable, "-m", "edge_client", "run", "-v"], env=env, cwd=REPO_ROOT,
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout: float = 40) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise
        return self.process.returncode

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self.log.close()


@pytest.fixture
def edge_processes() -> Iterator[Callable[[dict[str, str], Path], EdgeProcess]]:
    started: list[EdgeProcess] = []

    def start(env: dict[str, str], log_path: Path) -> EdgeProcess:
        started.append(EdgeProcess(env, log_path))
        return started[-1]

    yield start
    for proc in started:
        proc.close()


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


__all__ = ["free_port"]
