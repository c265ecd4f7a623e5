"""Simulated ward devices: real HTTP clients of the device API that answer tasks from a county's truth."""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from datetime import UTC, datetime

import httpx
import numpy as np

from models.faces import crop_to_jpeg
from models.faces.engines import SYNTHETIC
from models.faces.liveness.actions import Action, LivenessMethod
from models.faces.liveness.report import liveness_report
from models.verdicts import CaptureOutcome
from models.wire import (
    DEVICE_PREFIX,
    MAX_BATCH,
    BatchAck,
    LivenessReport,
    PairResponse,
    ResultBatch,
    ResultUpload,
    TaskBatch,
    TaskRead,
)
from server.checks.synthetic import synthetic_crop
from server.simulation.county import County, Truth
from server.simulation.embeddings import identity, photo_of
from server.simulation.real_faces import RealBed, RealFaces
from server.simulation.scenes import scene_jpeg


class SimulatedDevice(threading.Thread):
    """Pairs with a code, long-polls its ward's tasks and uploads one result per task it should answer."""

    def __init__(self, base_url: str, code: str, county: County, *, seed: int, answer_delay_s: float = 0.0,
                 stop: threading.Event | None = None, batch_size: int = MAX_BATCH,
                 real: RealFaces | None = None, token: str | None = None) -> None:
        super().__init__(daemon=True, name=f"device-{code}")
        self.base_url, self.code, self.county = base_url, code, county
        self.rng = np.random.default_rng(seed)
        self.answer_delay_s = answer_delay_s
        self.batch_size = batch_size
        self.real = real
        self.token = token  # already paired (installed earlier); else pairs with `code` first
        # As long as a real device waits (the edge client's default is 25 s): shorter means more idle requests.
        self.poll_wait_s = 20.0
        self.stop_event = stop or threading.Event()
        self.latencies_ms: list[float] = []
        self.answered: set[int] = set()
        self.errors: list[str] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(30.0, connect=5.0)) as client:
            token = self.token
            if token is None:
                paired = self._pair(client)
                if paired is None:
                    return
                token = paired.token
            client.headers["authorization"] = f"Bearer {token}"
            if self.answer_delay_s and self.stop_event.wait(self.answer_delay_s):
                return  # an offline ward: comes back online late, then syncs
            while not self.stop_event.is_set():
                try:
                    response = client.get(f"{DEVICE_PREFIX}/tasks", params={"wait_s": self.poll_wait_s})
                    batch = TaskBatch.model_validate(response.raise_for_status().json())
                except httpx.HTTPError as e:
                    if self.stop_event.is_set():
                        break  # the run is over and the server going down cut this long-poll: not an error
                    self.errors.append(type(e).__name__)
                    self.stop_event.wait(0.5)
                    continue
                fresh = [t for t in batch.tasks if t.task_id not in self.answered]
                for start in range(0, len(fresh), self.batch_size):
                    self._answer(client, fresh[start:start + self.batch_size])
                if batch.tasks and not fresh:
                    self.stop_event.wait(0.5)  # only unanswerable (silent) beds left: don't spin

    def _pair(self, client: httpx.Client) -> PairResponse | None:
        """Pairs, retrying while the server is too busy to answer (a province's devices all start at once)."""
        while not self.stop_event.is_set():
            try:
                response = client.post(f"{DEVICE_PREFIX}/pair", json={"code": self.code, "name": "simulated"})
                return PairResponse.model_validate(response.raise_for_status().json())
            except httpx.TransportError as e:
                self.errors.append(type(e).__name__)
                self.stop_event.wait(1.0)
            except httpx.HTTPStatusError as e:  # e.g. the code was used by a try whose answer timed out
                self.errors.append(f"pair {e.response.status_code}")
                return None
        return None

    def _answer(self, client: httpx.Client, tasks: list[TaskRead]) -> None:
        """Uploads the results of these tasks in one request, as a device syncing its outbox does."""
        self.answered.update(t.task_id for t in tasks)
        uploads = [u for u in (self.result_for(t) for t in tasks) if u is not None]
        if not uploads:
            return
        body = ResultBatch(results=uploads).model_dump_json()
        start = time.perf_counter()
        # As the edge client's outbox does: the same keys are sent again until the server answers (a result
        # the server stored before the answer was lost comes back as a duplicate, never twice).
        while True:
            try:
                response = client.post(f"{DEVICE_PREFIX}/results/batch", content=body,
                                       headers={"content-type": "application/json"}, timeout=120.0)
            except httpx.TransportError as e:
                self.errors.append(type(e).__name__)
                if self.stop_event.wait(1.0):
                    return
                continue
            if response.status_code in (429, 503) or response.status_code >= 500:
                self.errors.append(str(response.status_code))
                if self.stop_event.wait(1.0):
                    return
                continue
            break
        # Each result waited for the whole request: its latency is the request's.
        self.latencies_ms.extend([(time.perf_counter() - start) * 1000] * len(uploads))
        if response.status_code >= 400:
            self.errors.append(f"{response.status_code} {response.json().get('code')}")
            return
        for item in BatchAck.model_validate(response.json()).items:
            if item.error is not None:
                self.errors.append(f"{item.error.http_status} {item.error.code}")

    def _real_check(self, bed: RealBed, task: TaskRead, base: dict,  # type: ignore[type-arg]
                    scene_b64: str) -> ResultUpload:
        """The real engine on a real photo: what `bedcheck-edge check` would upload for this bed."""
        assert self.real is not None
        burst, judged = self.real.check(bed, list(task.challenge))
        if burst.encoding is None or burst.crop_rgb is None:
            return ResultUpload(outcome=CaptureOutcome.NO_FACE, **base)
        crop = crop_to_jpeg(burst.crop_rgb)
        if bed.truth == Truth.SPOOF:
            liveness = liveness_report(judged)
        else:
            liveness = _simulated(True, judged.passive_score, list(task.challenge))
        # A real photo went through the real engine: its embedding carries that engine's tag.
        base = {**base, "engine_version": self.real.engine.tag}
        return ResultUpload(outcome=CaptureOutcome.FACE_CAPTURED if liveness.is_live else CaptureOutcome.SPOOF,
                            embedding=[float(x) for x in burst.encoding], liveness=liveness,
                            face_crop_jpeg_b64=base64.b64encode(crop).decode("ascii"),
                            evidence_sha256=hashlib.sha256(crop).hexdigest(), frames_used=burst.frames_used,
                            other_faces=burst.other_faces, scene_jpeg_b64=scene_b64, **base)

    def result_for(self, task: TaskRead) -> ResultUpload | None:
        seeded = self.county.beds.get(task.admission_id)
        truth = seeded.truth if seeded else Truth.PRESENT
        if truth == Truth.BED_HANGING_SILENT:
            return None
        base = {"idempotency_key": uuid.uuid4().hex, "task_id": task.task_id, "nonce": task.nonce,
                "captured_at": datetime.now(UTC), "engine_version": SYNTHETIC.tag}
        # Every face capture carries its scene: the bed's room, or, carried home, somewhere else.
        scene = base64.b64encode(scene_jpeg(task.bed_id, self.rng, at_home=truth == Truth.CARRIED_HOME)).decode()
        if self.real is not None and task.admission_id in self.real.beds:
            return self._real_check(self.real.beds[task.admission_id], task, base, scene)
        if truth in (Truth.BED_HANGING_EMPTY, Truth.ON_LEAVE):
            return ResultUpload(outcome=CaptureOutcome.BED_EMPTY, note="巡查时床位无人", **base)
        if truth == Truth.BED_HANGING_NO_FACE:
            return ResultUpload(outcome=CaptureOutcome.NO_FACE, **base)
        base["scene_jpeg_b64"] = scene
        face = self.county.identities[task.insured_person_id]
        if truth == Truth.IMPERSONATION:
            face = identity(self.rng)
        embedding = photo_of(face, self.rng)
        live = truth != Truth.SPOOF
        liveness = _simulated(live, 0.9 if live else 0.2, list(task.challenge))
        # No photo of this synthetic face exists: a labelled synthetic crop carries the embedding, which only
        # a demo or test server accepts (server/checks/synthetic.py).
        crop = synthetic_crop(embedding)
        return ResultUpload(outcome=CaptureOutcome.FACE_CAPTURED if live else CaptureOutcome.SPOOF,
                            embedding=embedding.tolist(), liveness=liveness,
                            face_crop_jpeg_b64=base64.b64encode(crop).decode("ascii"),
                            evidence_sha256=hashlib.sha256(crop).hexdigest(), frames_used=3, **base)


def _simulated(live: bool, passive_score: float, challenge: list[Action]) -> LivenessReport:
    """Liveness of a simulated patient: declared `simulated` (no key frames), which only a demo or test server
    accepts (ServerSettings.simulated_liveness_allowed)."""
    return LivenessReport(is_live=live, score=0.9 if live else 0.2, blink_detected=live, passive_score=passive_score,
                          reasons=[] if live else ["simulated_spoof"], method=LivenessMethod.SIMULATED,
                          challenge=challenge)
