"""The server's own judgement of liveness: it re-judges the capture session the device uploaded.

The device's liveness report is kept as evidence and decides nothing. The server rebuilds the session from the
uploaded frames (face regions with their times and boxes, the prompt times) and calls the one judge of a
capture session (models/faces/liveness/session.py) with the task's own challenge and drawn prompt schedule:
each action after its prompt and within its window, the 3-D test, continuity. Then it encodes several frames of
the session (the neutral face, each action's frame, the crop's frame) and each must be the person of the crop.

Which method a task allows is decided here, from the device and the bed, never from the report: a tablet
answers the challenge; the signs-of-life method (`motion`) only from the device a bureau user registered as
that bed's fixed camera (`Device.fixed_camera_bed_ids`).

Findings: `liveness_mismatch` (a method the task does not allow, a session that fails the re-judgement) and
`identity_changed` (the session's face is not one person). Results without liveness evidence (simulated
devices, older clients) pass only where the server allows them (`allow_simulated_liveness`, demo and test).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlmodel import Session, col, select

from models.errors import BedcheckError
from models.faces.liveness.actions import Action, LivenessMethod, prompt_schedule
from models.settings import EngineSettings
from models.verdicts import FlagKind
from models.wire import CaptureSession
from server.campaigns.tables import CheckTask
from server.checks.policy import allowed_methods
from server.checks.tables import SESSION_ROLE, CheckResult, KeyFrame
from server.devices.tables import Device

# Encodes a face region (RGB) with the engine of the crop's encoding; None when no face is found in it.
Encoder = Callable[[Any], "np.ndarray | None"]


@dataclass
class LivenessRecheck:
    engine_settings: EngineSettings
    allow_simulated: bool
    _landmarker: Any = field(default=None, init=False)

    def findings(self, db: Session, result: CheckResult, task: CheckTask, *, encoder: Encoder | None = None,
                 crop_vector: np.ndarray | None = None, same_person: float | None = None
                 ) -> list[tuple[FlagKind, dict[str, Any]]]:
        """What the server's re-judgement finds wrong with the result's liveness, as (flag kind, details)."""
        report = result.liveness or {}
        method = str(report.get("method", LivenessMethod.NONE.value))
        base: dict[str, Any] = {"result_id": result.id, "device_id": result.device_id, "method": method}
        if method in (LivenessMethod.NONE.value, LivenessMethod.SIMULATED.value):
            if not report.get("is_live"):
                return []
            return [] if self.allow_simulated else [(FlagKind.LIVENESS_MISMATCH,
                                                     {**base, "reason": "no_liveness_evidence"})]
        if method not in LivenessMethod._value2member_map_:
            return [(FlagKind.LIVENESS_MISMATCH, {**base, "reason": "unknown_method"})]
        device = db.get(Device, result.device_id)
        allowed = allowed_methods(device.fixed_camera_bed_ids if device else None, task.bed_id,
                                  simulated=self.allow_simulated)
        if LivenessMethod(method) not in allowed:
            return [(FlagKind.LIVENESS_MISMATCH, {**base, "reason": "liveness_method_not_allowed",
                                                  "allowed": sorted(m.value for m in allowed)})]
        if method == LivenessMethod.CANNOT_TAKE_PART.value:
            return []  # never verified (checks/policy.py): a reviewer looks at it
        if not result.session:
            return [(FlagKind.LIVENESS_MISMATCH, {**base, "reason": "no_session"})]
        frames = list(db.exec(select(KeyFrame).where(KeyFrame.result_id == result.id, KeyFrame.role == SESSION_ROLE)
                              .order_by(col(KeyFrame.position))))
        asked = [Action(a) for a in (task.challenge or [])]
        try:
            session = self._session(result.session, frames)
        except (BedcheckError, ValueError) as e:
            return [(FlagKind.LIVENESS_MISMATCH, {**base, "reason": "session_unreadable",
                                                  "code": getattr(getattr(e, "code", None), "value", "invalid")})]
        judgement = self.judge(session, asked, LivenessMethod(method), task.nonce)
        out: list[tuple[FlagKind, dict[str, Any]]] = []
        if not judgement.is_live:
            out.append((FlagKind.LIVENESS_MISMATCH, {
                **base, "reason": "session_fails", "asked": [a.value for a in asked],
                "found": list(judgement.reasons)[:20], "device_said_live": bool(report.get("is_live"))}))
        if encoder is not None and crop_vector is not None and same_person is not None:
            changed = identity_findings(session, judgement, encoder, crop_vector, same_person)
            if changed:
                out.append((FlagKind.IDENTITY_CHANGED, {**base, **changed}))
        return out

    def judge(self, session: Any, asked: list[Action], method: LivenessMethod, nonce: str) -> Any:
        from models.faces.liveness.session import judge_session

        schedule = prompt_schedule(nonce, len(asked)) if method == LivenessMethod.CHALLENGE else None
        return judge_session(session, asked if method == LivenessMethod.CHALLENGE else [], self.landmarker,
                             self.engine_settings, method=method, schedule=schedule)

    def _session(self, meta: dict[str, Any], frames: list[KeyFrame]) -> Any:
        from models.faces.liveness.session import decode_session

        stored = {f.position: f.jpeg for f in frames}
        wire_frames = []
        for position, frame in enumerate(meta.get("frames", [])):
            jpeg = stored.get(position)
            if jpeg is None:
                raise ValueError(f"session frame {position} is not stored")
            wire_frames.append({**frame, "jpeg_b64": base64.b64encode(jpeg).decode("ascii")})
        wire = CaptureSession.model_validate({**meta, "frames": wire_frames})
        return decode_session(wire, self.engine_settings)

    @property
    def landmarker(self) -> Any:
        if self._landmarker is None:
            from models.faces.liveness.track import default_landmarker

            self._landmarker = default_landmarker(self.engine_settings)
        return self._landmarker


def identity_findings(session: Any, judgement: Any, encoder: Encoder, crop_vector: np.ndarray,
                      same_person: float) -> dict[str, Any] | None:
    """Whether every identity frame of the session (`session.identity_indices`) shows the crop's person (None when
    it does). A frame where no face is found (a head turned far) is tolerated while most frames are found."""
    from models.faces.liveness.session import identity_indices

    frames = session.frames
    wanted = identity_indices(judgement, len(frames))
    distances: dict[int, float | None] = {}
    for index in wanted:
        vector = encoder(frames[index].image)
        distances[index] = None if vector is None else float(np.linalg.norm(vector - crop_vector))
    faceless = [i for i, d in distances.items() if d is None]
    other = {i: round(d, 4) for i, d in distances.items() if d is not None and d > same_person}
    if not other and len(faceless) < max(2, len(wanted) // 2):
        return None
    return {"reason": "another_face" if other else "face_not_found", "frames": [int(i) for i in other] or faceless,
            "distances": [other[i] for i in other], "threshold": round(same_person, 4),
            "frames_checked": len(wanted)}
