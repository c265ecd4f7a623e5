"""The device's use cases, shared by the CLI, the run loop and the nurse's screen."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from edge_client.api import ApiError, DeviceApi
from edge_client.check import CheckRecord, bed_empty, check_frames, patient_exempt
from edge_client.config import EdgeSettings
from edge_client.credentials import Credentials, load_credentials, save_credentials
from edge_client.outbox import Outbox
from edge_client.place import place_cues, scene_b64
from edge_client.prompt import ChallengeProgress
from edge_client.sources import fit_frames, open_source
from edge_client.sync import Syncer, SyncReport
from models.faces.engine import FaceEngine
from models.faces.liveness.actions import RESPONSE_WINDOW_S, CannotTakePart, prompt_schedule
from models.faces.match import Embeddings
from models.settings import EngineSettings
from models.verdicts import ExemptionReason
from models.wire import BedRoster, ReferenceRead, ReferenceUpload, SceneSource, TaskRead, WardRoster

log = logging.getLogger(__name__)
SOFTWARE_VERSION = "bedcheck-edge/0.1"


class CheckRefused(Exception):
    """A check cannot be made (unknown bed, nobody admitted, no task and no network)."""


@dataclass(frozen=True)
class StoredCheck:
    result_id: int
    bed_label: str
    record: CheckRecord


def pair_device(settings: EdgeSettings, server_url: str, code: str,
                engine_settings: EngineSettings | None = None) -> Credentials:
    """Registers with a one-time code (and the engine this device embeds with); saves the credential (0600)."""
    api = DeviceApi(server_url, timeout_s=settings.http_timeout_s)
    try:
        paired = api.pair(code, settings.device_name, (engine_settings or EngineSettings.load()).engine_tag,
                          place_cues(settings))
    finally:
        api.close()
    credentials = Credentials(server_url=server_url, device_id=paired.device_id, token=paired.token,
                              hospital_id=paired.hospital_id, ward_id=paired.ward_id)
    save_credentials(settings.credentials_path, credentials)
    return credentials


class Device:
    def __init__(self, settings: EdgeSettings, engine_settings: EngineSettings | None = None) -> None:
        self.settings = settings
        self.credentials = load_credentials(settings.credentials_path)
        self.api = DeviceApi(settings.server_url or self.credentials.server_url, self.credentials.token,
                             timeout_s=settings.http_timeout_s)
        self.outbox = Outbox(settings.outbox_path)
        self.syncer = Syncer(self.api, self.outbox, attempts=settings.retry_attempts,
                             max_wait_s=settings.retry_max_wait_s)
        self._engine_settings = engine_settings or EngineSettings.load()
        self._engine: FaceEngine | None = None
        self.progress: ChallengeProgress | None = None  # the challenge on the nurse's screen, live
        offset = self.outbox.meta("clock_offset_ms")
        self.api.clock_offset_ms = int(offset) if offset is not None else None

    @property
    def engine(self) -> FaceEngine:
        # Built on first check: loading dlib's models costs seconds the CLI's `status` need not pay.
        if self._engine is None:
            self._engine = FaceEngine(self._engine_settings)
        return self._engine

    @property
    def engine_tag(self) -> str:
        return self._engine_settings.engine_tag

    def close(self) -> None:
        self.api.close()
        self.outbox.close()

    # --- server state ------------------------------------------------------------------------------
    def refresh_roster(self) -> WardRoster:
        """The ward roster, with the enrolled embeddings of this device's engine (reported first if the server
        sent another engine's: the device was re-configured since it last said)."""
        roster = self.api.roster()
        if roster.engine_version != self.engine_tag:
            self.heartbeat()
            roster = self.api.roster()
        self.outbox.save_roster(roster)
        self._save_offset()
        return roster

    def poll_tasks(self, wait_s: float) -> list[TaskRead]:
        """Long-polls the ward's pending tasks into the outbox; returns the new ones."""
        fresh = self.outbox.store_tasks(self.api.tasks(wait_s))
        self._save_offset()
        return fresh

    def heartbeat(self) -> None:
        self.api.heartbeat(self.outbox.unacknowledged(), SOFTWARE_VERSION, self.engine_tag)
        self._save_offset()

    def sync(self) -> SyncReport:
        report = self.syncer.sync()
        self._save_offset()
        return report

    def _save_offset(self) -> None:
        if self.api.clock_offset_ms is not None:
            self.outbox.set_meta("clock_offset_ms", str(self.api.clock_offset_ms))

    @property
    def clock_offset_ms(self) -> int:
        return self.api.clock_offset_ms or 0

    # --- checks ------------------------------------------------------------------------------------
    def check_bed(self, bed_label: str, source_spec: str, *, cannot_take_part: CannotTakePart | None = None,
                  note: str = "") -> StoredCheck:
        """Captures at the bed, judges it and commits the result to the outbox (not uploaded yet).

        A fixed bed camera (`bed_sources`) watches for signs of life over `motion_window_s`; the tablet shows
        the task's challenge on the nurse's screen and films it, stopping once it is done or timed out.
        """
        bed, task = self._bed_and_task(bed_label)
        settings = self.engine.settings
        # A bed's own fixed camera (its configured source) watches; a tablet films the nurse's challenge.
        fixed = self.settings.bed_sources.get(bed_label) == source_spec
        mode = "motion" if fixed else "challenge"
        schedule = task.challenge_prompts_s or prompt_schedule(task.nonce, len(task.challenge))
        if mode == "motion":
            window_s = settings.motion_window_s
        else:
            # The last prompt comes at its drawn time; its response window and a short tail close the capture.
            window_s = schedule[-1] + RESPONSE_WINDOW_S + 0.5 if schedule else 2.0
        source = open_source(source_spec, settings)
        progress = ChallengeProgress(bed_label, list(task.challenge) if mode == "challenge" else [],
                                     self.settings.camera_mirrored, window_s, settings,
                                     schedule if mode == "challenge" else [])
        self.progress = progress
        try:
            frames, times = progress.capture(source, self.settings.frame_max_side_px)
        finally:
            source.close()
        enrolled = self._enrolled_for(bed, task)
        record = check_frames(self.engine, frames, task, enrolled, times_s=times, mode=mode,
                              clock_offset_ms=self.clock_offset_ms, encode_best=self.settings.encode_best,
                              cannot_take_part=cannot_take_part, note=note, track=progress.track(),
                              prompts_s=progress.prompts_s(times[0]) if mode == "challenge" and times else None,
                              scene_source=SceneSource.BED_CAMERA if fixed else SceneSource.TABLET,
                              place=place_cues(self.settings))
        progress.finish(record.upload.liveness.is_live if record.upload.liveness else False)
        return self._store(bed, record)

    def capture_reference(self, bed_label: str, source_spec: str, *, fixed_camera: bool = False) -> ReferenceRead:
        """Captures a reference frame of a bed's surroundings (faces blurred) and uploads it now."""
        roster = self.outbox.roster() or self._try_refresh()
        bed = next((b for b in roster.beds if b.bed_label == bed_label), None) if roster else None
        if bed is None:
            raise CheckRefused(f"bed {bed_label!r} is not on this ward's roster")
        source = open_source(source_spec, self.engine.settings)
        try:
            frames = fit_frames(source.burst(self.settings.burst_frames, self.settings.burst_stride),
                                self.settings.frame_max_side_px)
        finally:
            source.close()
        scene = scene_b64(frames, self.engine.settings)
        if scene is None:
            raise CheckRefused(f"bed {bed_label}: the source gave no frames")
        body = ReferenceUpload(scene_jpeg_b64=scene, cues=place_cues(self.settings),
                               source=SceneSource.BED_CAMERA if fixed_camera else SceneSource.TABLET)
        return self.api.add_reference(bed.bed_id, body)

    def mark_empty(self, bed_label: str, note: str) -> StoredCheck:
        bed, task = self._bed_and_task(bed_label)
        return self._store(bed, bed_empty(task, note, clock_offset_ms=self.clock_offset_ms))

    def mark_exempt(self, bed_label: str, reason: ExemptionReason, note: str) -> StoredCheck:
        bed, task = self._bed_and_task(bed_label)
        return self._store(bed, patient_exempt(task, reason, note, clock_offset_ms=self.clock_offset_ms))

    def _store(self, bed: BedRoster, record: CheckRecord) -> StoredCheck:
        result_id = self.outbox.add_result(record.upload, bed_label=bed.bed_label,
                                           local_verdict=record.local_verdict.value)
        log.info("bed %s: result %s stored (%s)", bed.bed_label, result_id, record.local_verdict.value)
        return StoredCheck(result_id, bed.bed_label, record)

    def _bed_and_task(self, bed_label: str) -> tuple[BedRoster, TaskRead]:
        roster = self.outbox.roster() or self._try_refresh()
        bed = next((b for b in roster.beds if b.bed_label == bed_label), None) if roster else None
        if bed is None:
            raise CheckRefused(f"bed {bed_label!r} is not on this ward's roster")
        task = self.outbox.open_task_for_bed(bed_label)
        if task is not None:
            return bed, task
        # The loop may not have fetched a spot check's task for this bed yet: answer that one, not a new one
        # (which would leave the spot check's task unanswered). Offline, the ad-hoc request fails the same way.
        try:
            self.poll_tasks(0.0)
        except ApiError as e:
            log.warning("tasks unavailable: %s", e)
        task = self.outbox.open_task_for_bed(bed_label)
        if task is not None:
            return bed, task
        try:
            task = self.api.adhoc_task(bed.bed_id)
        except ApiError as e:
            raise CheckRefused(f"bed {bed_label}: no pending task and none could be requested ({e})") from e
        self.outbox.add_task(task)
        return bed, task

    def _try_refresh(self) -> WardRoster | None:
        try:
            return self.refresh_roster()
        except ApiError as e:
            log.warning("roster unavailable: %s", e)
            return None

    def _enrolled_for(self, bed: BedRoster, task: TaskRead) -> Embeddings | None:
        stored = self.outbox.roster()
        engine = stored.engine_version if stored else ""
        if bed.insured_person_id != task.insured_person_id:
            # The roster is older than the task (a new admission): fetch it again if the network allows.
            fresh = self._try_refresh()
            bed = next((b for b in fresh.beds if b.bed_id == task.bed_id), bed) if fresh else bed
            engine = fresh.engine_version if fresh else engine
        if bed.insured_person_id != task.insured_person_id or not bed.embeddings:
            return None
        # A roster of another engine (an old one, or a server that ignored our report) is never compared
        # with: the device records no local match and the server decides alone.
        return Embeddings.of(engine, bed.embeddings) if engine == self.engine_tag else None
