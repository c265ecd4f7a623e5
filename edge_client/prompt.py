"""The challenge on the nurse's screen: the prompts in Chinese, each at its drawn time, which ones are done, the
time left.

Each prompt appears at the time the task drew for it (`TaskRead.challenge_prompts_s`, seconds after the first
frame) and the time it was shown is recorded: the server judges each action after its prompt. The frames are
read and the face tracked as they arrive, so the screen can tick each action off as the patient does it, and
capture stops once the whole challenge is done (or its time is up).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from edge_client.sources import FrameSource
from models.faces.decode import RGBImage, fit_side
from models.faces.liveness.actions import RESPONSE_WINDOW_S, Action, prompt_for
from models.faces.liveness.challenge import judge_prompted, measure_track
from models.faces.liveness.track import FaceTrack, FaceTracker, default_landmarker
from models.settings import EngineSettings

# Re-judge the challenge every this many frames for the screen (the final judgement uses every frame).
_JUDGE_EVERY = 6
_KEPT_SIDE_PX = 640
# Frames kept after the last action, so its key frame is not the last frame of the burst.
_TAIL_S = 0.4


class ChallengeProgress:
    def __init__(self, bed_label: str, actions: list[Action], mirrored: bool, window_s: float,
                 settings: EngineSettings, schedule: list[float] | None = None) -> None:
        self.bed_label, self.actions, self.mirrored = bed_label, actions, mirrored
        self.window_s, self.settings = window_s, settings
        self.schedule = list(schedule) if schedule is not None else [0.0] * len(actions)
        self.shown_s: list[float] = []  # burst time each prompt was shown at
        self.done = [False] * len(actions)
        self.started_at = time.monotonic()
        self.finished: bool | None = None  # None while capturing, then whether it was judged live
        self._tracker = FaceTracker(default_landmarker(settings), settings)
        self._lock = threading.Lock()
        self.face_seen = False

    def capture(self, source: FrameSource, max_side_px: int) -> tuple[list[RGBImage], list[float]]:
        """Reads the source for the window (less when the challenge is done early), tracking as it goes."""
        frames: list[RGBImage] = []
        times: list[float] = []
        done_at: float | None = None
        for frame, at in source.timed(self.settings.liveness_fps, self.window_s):
            # Kept small: a 13-second challenge at 30 frames a second is hundreds of frames in memory.
            frame = fit_side(frame, min(max_side_px, _KEPT_SIDE_PX))
            frames.append(frame)
            times.append(at)
            with self._lock:
                while len(self.shown_s) < len(self.schedule) and at - times[0] >= self.schedule[len(self.shown_s)]:
                    self.shown_s.append(at)
            seen = self._tracker.add(frame, at)
            self.face_seen = self.face_seen or seen is not None
            shown = len(self.shown_s)
            if shown and len(frames) % _JUDGE_EVERY == 0:
                results, _ = judge_prompted(measure_track(self._tracker.result()), self.actions[:shown],
                                            self.shown_s, self.settings, RESPONSE_WINDOW_S)
                with self._lock:
                    self.done = [r.passed for r in results] + [False] * (len(self.actions) - shown)
                if all(self.done) and done_at is None:
                    done_at = at
            if done_at is not None and at - done_at >= _TAIL_S:
                break
        return frames, times

    def track(self) -> FaceTrack:
        return self._tracker.result()

    def prompts_s(self, first_frame_s: float) -> list[float]:
        """When each prompt was shown, on the burst's clock (a prompt never reached is placed where it was due)."""
        shown = list(self.shown_s)
        return shown + [first_frame_s + t for t in self.schedule[len(shown):]]

    def finish(self, is_live: bool) -> None:
        self.finished = is_live

    def state(self) -> dict[str, Any]:
        """What the nurse's screen shows."""
        with self._lock:
            done = list(self.done)
        elapsed = time.monotonic() - self.started_at
        steps = [{"action": a.value, "prompt": prompt_for(a, mirrored=self.mirrored), "done": d}
                 for a, d in zip(self.actions, done, strict=True)]
        shown = len(self.shown_s)
        current = next((s["prompt"] for s in steps[:shown] if not s["done"]), None)
        return {"bed": self.bed_label, "steps": steps, "current": current, "face_seen": self.face_seen,
                "seconds_left": max(0.0, round(self.window_s - elapsed, 1)), "finished": self.finished}

