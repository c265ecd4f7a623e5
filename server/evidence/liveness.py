"""The server's second look at liveness: do the uploaded key frames show what the device reported?

A device that claims `is_live` for a challenge must upload the neutral frame and one frame per action. The
server finds the face's landmarks in each frame itself and re-judges each action against the neutral frame
and the 3-D test (models.faces.liveness.judge.recheck_key_frames). Key frames that show no challenge, a
challenge other than the task's, or a face moving as a plane are a `liveness_mismatch` finding: a device (or
whoever controls it) that lies about liveness is caught here, whatever it put in its report.

Results without liveness evidence (simulated devices, older clients) pass only where the server allows them
(`allow_simulated_liveness`, demo and test); elsewhere they are findings too, never a silent pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from models.errors import ImageError
from models.faces.decode import decode_image
from models.faces.liveness.actions import Action, LivenessMethod
from models.settings import EngineSettings
from server.campaigns.tables import CheckTask
from server.checks.tables import CheckResult, KeyFrame

MOTION_FRAMES = 2


@dataclass
class LivenessRecheck:
    engine_settings: EngineSettings
    allow_simulated: bool
    _landmarker: Any = field(default=None, init=False)

    def findings(self, db: Session, result: CheckResult, task: CheckTask) -> dict[str, Any] | None:
        """The mismatch between reported liveness and key frames, as flag details; None when they agree."""
        report = result.liveness or {}
        if not report.get("is_live"):
            return None  # the device itself said not live: the verdict already says so
        method = report.get("method", LivenessMethod.NONE.value)
        base: dict[str, Any] = {"result_id": result.id, "device_id": result.device_id, "method": method}
        if method in (LivenessMethod.NONE.value, LivenessMethod.SIMULATED.value):
            return None if self.allow_simulated else {**base, "reason": "no_liveness_evidence"}
        frames = list(db.exec(select(KeyFrame).where(KeyFrame.result_id == result.id)
                              .order_by(col(KeyFrame.position))))
        if method == LivenessMethod.CHALLENGE.value:
            return self._challenge(frames, report, task, base)
        if method == LivenessMethod.MOTION.value:
            return self._motion(frames, base)
        return {**base, "reason": "unknown_method"}

    def _challenge(self, frames: list[KeyFrame], report: dict[str, Any], task: CheckTask,
                   base: dict[str, Any]) -> dict[str, Any] | None:
        from models.faces.liveness.judge import recheck_key_frames

        asked = [Action(a) for a in (task.challenge or [])]
        reported = [str(a) for a in report.get("challenge", [])]
        if asked and reported != [a.value for a in asked]:
            return {**base, "reason": "challenge_differs", "asked": [a.value for a in asked], "reported": reported}
        actions = asked or [Action(a) for a in reported if a in Action._value2member_map_]
        if not frames:
            return {**base, "reason": "no_key_frames", "asked": [a.value for a in actions]}
        landmarks, sizes, unreadable = self._landmarks(frames)
        if unreadable:
            return {**base, "reason": "key_frame_unreadable", "code": unreadable}
        reasons = recheck_key_frames([(f.role, p) for f, p in zip(frames, landmarks, strict=True)], sizes, actions,
                                     self.engine_settings)
        if reasons:
            return {**base, "reason": "key_frames_disagree", "asked": [a.value for a in actions],
                    "found": reasons}
        return None

    def _motion(self, frames: list[KeyFrame], base: dict[str, Any]) -> dict[str, Any] | None:
        if len(frames) < MOTION_FRAMES:
            return {**base, "reason": "no_key_frames"}
        landmarks, _, unreadable = self._landmarks(frames)
        if unreadable:
            return {**base, "reason": "key_frame_unreadable", "code": unreadable}
        if sum(p is not None for p in landmarks) < MOTION_FRAMES:
            return {**base, "reason": "no_face_in_key_frames"}
        return None

    def _landmarks(self, frames: list[KeyFrame]) -> tuple[list[Any], list[tuple[int, int]], str | None]:
        points, sizes = [], []
        for frame in frames:
            try:
                image = decode_image(frame.jpeg or b"", self.engine_settings)
            except ImageError as e:
                return [], [], e.code.value
            box = self.landmarker.detect(image)
            points.append(None if box is None else self.landmarker.landmarks(image, box))
            sizes.append((image.shape[1], image.shape[0]))
        return points, sizes, None

    @property
    def landmarker(self) -> Any:
        if self._landmarker is None:
            from models.faces.liveness.track import default_landmarker

            self._landmarker = default_landmarker(self.engine_settings)
        return self._landmarker
