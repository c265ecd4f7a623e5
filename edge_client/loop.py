"""`bedcheck-edge run`: the device loop. One object starts and stops every part in a fixed order.

Start: repair the outbox (rows a killed process left `uploading`), load the roster, then the workers:
sync, housekeeping (heartbeat, roster), checker (fixed bed cameras), task poller, nurse screen.
Stop (SIGTERM, SIGINT): set the stop event, stop the screen, join the workers; a check in progress
finishes and is committed; a long-poll in flight is abandoned (the server re-sends pending tasks).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from edge_client.api import ApiError
from edge_client.device import CheckRefused, Device
from edge_client.outbox import AlreadyAnswered
from edge_client.sources import SourceError
from models.errors import BedcheckError

log = logging.getLogger(__name__)


class Runner:
    def __init__(self, device: Device) -> None:
        self.device = device
        self.settings = device.settings
        self.stop_event = device.syncer.stop
        self._wake_sync = threading.Event()
        # Bounded: when checks back up, tasks wait on the server's list, nothing is lost.
        self._checks: queue.Queue[tuple[int, str]] = queue.Queue(maxsize=64)
        self._queued: set[int] = set()
        self._queued_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._screen: object | None = None
        self.online = False

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        repaired = self.device.outbox.repair()
        if repaired:
            log.info("outbox: %d interrupted upload(s) back to pending", repaired)
        try:
            self.device.refresh_roster()
            self.online = True
        except ApiError as e:
            log.warning("starting offline: %s", e)
        for name, target in (("sync", self._sync_loop), ("housekeeping", self._housekeeping_loop),
                             ("checker", self._checker_loop), ("poller", self._poll_loop)):
            thread = threading.Thread(target=target, name=f"edge-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if self.settings.screen_enabled:
            from edge_client.screen import start_screen

            self._screen = start_screen(self.device, self.settings, on_change=self._wake_sync.set)

    def stop(self) -> None:
        self.stop_event.set()
        self._wake_sync.set()
        if self._screen is not None:
            self._screen.stop()  # type: ignore[attr-defined]
        for thread in self._threads:
            # The poller may sit in a long-poll: it is a daemon and is not waited for.
            thread.join(timeout=1.0 if thread.name == "edge-poller" else 30.0)
        self.device.close()

    def run_until_stopped(self) -> None:
        self.start()
        try:
            while not self.stop_event.wait(0.5):
                pass
        finally:
            self.stop()

    # --- workers -----------------------------------------------------------------------------------
    def _poll_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                fresh = self.device.poll_tasks(self.settings.long_poll_s)
                self.online = True
            except ApiError as e:
                self._offline("task poll", e)
                continue
            self._enqueue_camera_beds()
            if not fresh:
                self.stop_event.wait(self.settings.poll_min_interval_s)

    def _enqueue_camera_beds(self) -> None:
        for task in self.device.outbox.open_tasks():
            if task.bed_label not in self.settings.bed_sources:
                continue  # a nurse's bed: waits on the screen
            with self._queued_lock:
                if task.task_id in self._queued:
                    continue
                self._queued.add(task.task_id)
            try:
                self._checks.put_nowait((task.task_id, task.bed_label))
            except queue.Full:
                with self._queued_lock:
                    self._queued.discard(task.task_id)
                return

    def _checker_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                task_id, bed_label = self._checks.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                stored = self.device.check_bed(bed_label, self.settings.bed_sources[bed_label])
                log.info("bed %s checked: %s", bed_label, stored.record.local_verdict.value)
                self._wake_sync.set()
            except AlreadyAnswered:
                pass
            except (CheckRefused, SourceError, BedcheckError) as e:
                log.warning("bed %s not checked: %s", bed_label, e)
            finally:
                with self._queued_lock:
                    self._queued.discard(task_id)

    def _sync_loop(self) -> None:
        while not self.stop_event.is_set():
            self._wake_sync.wait(self.settings.sync_interval_s)
            self._wake_sync.clear()
            if self.stop_event.is_set():
                return
            report = self.device.sync()
            if report.offline:
                self.online = False
                self.stop_event.wait(self.settings.offline_wait_s)

    def _housekeeping_loop(self) -> None:
        jobs: list[tuple[float, Callable[[], object], str]] = [
            (self.settings.heartbeat_interval_s, self.device.heartbeat, "heartbeat"),
            (self.settings.roster_refresh_s, self.device.refresh_roster, "roster refresh"),
        ]
        due = [0.0, time.monotonic() + self.settings.roster_refresh_s]
        while not self.stop_event.wait(0.5):
            now = time.monotonic()
            for index, (interval, job, name) in enumerate(jobs):
                if now < due[index]:
                    continue
                try:
                    job()
                    due[index] = now + interval
                except ApiError as e:
                    log.warning("%s failed: %s", name, e)
                    due[index] = now + min(interval, self.settings.offline_wait_s)

    def _offline(self, what: str, error: ApiError) -> None:
        if self.online:
            log.warning("%s failed, working offline: %s", what, error)
        self.online = False
        self.stop_event.wait(self.settings.offline_wait_s)
