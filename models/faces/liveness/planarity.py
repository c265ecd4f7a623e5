"""The 3-D test: did the face's landmarks move as a head does, or as one plane (a photo, a screen)?

Between the neutral frame and each frame where the head pose changed by at least `planar_min_pose_deg`, the
eye and mouth corners are mapped by one homography and the nose tip is compared with where it sends it. A
flat print or a screen, moved, tilted, bent round a cup or turned, keeps its painted nose on the sheet: the
residual is landmark noise. A head that turns shows the parallax of a nose standing 0.6 inter-ocular
distances in front of the eyes. The cue is the residual divided by the sine of the pose change (the nose's
depth, `nose_depth`), the median over those frames, so one badly placed landmark set decides nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from models.faces.liveness.challenge import Measure
from models.faces.liveness.geometry import Points, homography_residual, nose_depth
from models.settings import EngineSettings

MIN_MOVED_FRAMES = 2


class Planarity(StrEnum):
    SOLID = "3d"                   # moved as a head
    PLANAR = "planar"              # moved as one plane: a photo or a screen
    NOT_MEASURED = "not_measured"  # the head hardly moved: nothing to judge


@dataclass(frozen=True)
class PlanarityResult:
    verdict: Planarity
    depth: float | None        # median nose depth (inter-ocular distances) over the frames that moved enough
    residual: float | None     # median nose-tip homography residual over those frames (inter-ocular distances)
    pose_change_deg: float     # largest pose change from the neutral frame
    frames_judged: int
    threshold: float           # on `depth`

    def as_dict(self) -> dict[str, object]:
        return {"verdict": self.verdict.value, "depth": self.depth, "residual": self.residual,
                "pose_change_deg": self.pose_change_deg, "frames_judged": self.frames_judged,
                "threshold": self.threshold}


def judge_planarity(points_by_index: dict[int, Points], measures: Sequence[Measure], reference_index: int,
                    settings: EngineSettings) -> PlanarityResult:
    """The 3-D verdict of a burst, against its neutral frame `reference_index`."""
    threshold = settings.planar_depth_threshold
    reference = next((m for m in measures if m.index == reference_index), None)
    if reference is None:
        return PlanarityResult(Planarity.NOT_MEASURED, None, None, 0.0, 0, threshold)
    changes = {m.index: float(np.hypot(m.yaw - reference.yaw, m.pitch - reference.pitch)) for m in measures}
    largest = round(max(changes.values(), default=0.0), 1)
    moved = [m for m in measures if changes[m.index] >= settings.planar_min_pose_deg]
    if len(moved) < MIN_MOVED_FRAMES:
        return PlanarityResult(Planarity.NOT_MEASURED, None, None, largest, len(moved), threshold)
    ref_points = points_by_index[reference_index]
    depths = [nose_depth(ref_points, points_by_index[m.index], m.yaw - reference.yaw, m.pitch - reference.pitch)
              for m in moved]
    residuals = [float(np.linalg.norm(homography_residual(ref_points, points_by_index[m.index]))) for m in moved]
    depth = float(np.median(depths))
    verdict = Planarity.SOLID if depth > threshold else Planarity.PLANAR
    return PlanarityResult(verdict, round(depth, 3), round(float(np.median(residuals)), 4), largest, len(moved),
                           threshold)
