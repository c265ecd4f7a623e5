"""The 3-D test: did the face's landmarks move as a head does, or as one plane (a photo, a screen)?

Between the neutral frame and each frame where the head pose changed by at least `planar_min_pose_deg`, the
eye and mouth corners are mapped by one homography and the nose tip is compared with where it sends it. A
flat print or a screen, moved, tilted, bent round a cup or turned, keeps its painted nose on the sheet: the
residual is landmark noise. A head that turns shows the parallax of a nose standing 0.6 inter-ocular
distances in front of the eyes. The cue is the residual divided by the sine of the pose change (the nose's
depth, `nose_depth`), the median over those frames, so one badly placed landmark set decides nothing.

`planar` is a finding against the capture, so it needs two things: a depth at or below the threshold and a
nose that really landed on the plane (its residual under half what a head's nose shows at the smallest pose
change measured). A low depth with a large residual is a model mismatch (a reference frame already turned, a
half-hidden face), not a plane: `not_measured`. For a challenge the 3-D test is a proof to give, not a finding
to avoid: anything but `3d` fails it (judge.py). A `3d` verdict from the landmarks must also be witnessed by the
texture when the burst's images are at hand (texture.py): a landmark model can lay a turned head over a hard-swung
print.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from models.faces.decode import RGBImage
from models.faces.liveness.challenge import Measure
from models.faces.liveness.geometry import Points, homography_residual, nose_depth
from models.faces.liveness.texture import texture_depth
from models.settings import EngineSettings

# A head turn is held (`action_hold_s`): at 15-30 frames a second that is many frames, while a landmark set
# thrown off by a strongly foreshortened print is a frame or two.
MIN_MOVED_FRAMES = 3
# Depth of a head's nose tip in front of the eye-and-mouth plane, inter-ocular distances (mean face: 0.6).
HEAD_NOSE_DEPTH = 0.6


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
    texture_depth: float | None = None  # the same depth on texture-followed points (texture.py), when witnessed

    def as_dict(self) -> dict[str, object]:
        return {"verdict": self.verdict.value, "depth": self.depth, "residual": self.residual,
                "pose_change_deg": self.pose_change_deg, "frames_judged": self.frames_judged,
                "threshold": self.threshold, "texture_depth": self.texture_depth,
                "texture_threshold": texture_threshold(self.threshold)}


def judge_planarity(points_by_index: dict[int, Points], measures: Sequence[Measure], reference_index: int,
                    settings: EngineSettings, images: Sequence[RGBImage] | None = None) -> PlanarityResult:
    """The 3-D verdict of a burst, against its neutral frame `reference_index`.

    With the burst's `images`, a `3d` verdict must also be witnessed by the texture: when the texture-followed
    nose stays on the plane the landmarks were fooled, and the verdict is `planar`.
    """
    threshold = settings.planar_depth_threshold
    reference = next((m for m in measures if m.index == reference_index), None)
    if reference is None:
        return PlanarityResult(Planarity.NOT_MEASURED, None, None, 0.0, 0, threshold)
    changes = {m.index: float(np.hypot(m.yaw - reference.yaw, m.pitch - reference.pitch)) for m in measures}
    largest = round(max(changes.values(), default=0.0), 1)
    moved = [m for m in measures if changes[m.index] >= settings.planar_min_pose_deg]
    if len(moved) < MIN_MOVED_FRAMES:
        return PlanarityResult(Planarity.NOT_MEASURED, None, None, largest, len(moved), threshold)
    turns = {m.index: (m.yaw - reference.yaw, m.pitch - reference.pitch) for m in moved}
    depth, residual = nose_parallax(points_by_index, reference_index, turns)
    witnessed = None
    if depth > threshold:
        verdict = Planarity.SOLID
        if images is not None:
            witnessed = texture_depth(images, points_by_index, reference_index, turns, MIN_MOVED_FRAMES)
            if witnessed is not None and witnessed <= texture_threshold(threshold):
                verdict = Planarity.PLANAR
    elif looks_planar(depth, residual, settings):
        verdict = Planarity.PLANAR
    else:
        verdict = Planarity.NOT_MEASURED
    return PlanarityResult(verdict, round(depth, 3), round(residual, 4), largest, len(moved), threshold,
                           None if witnessed is None else round(witnessed, 3))


def nose_parallax(points_by_index: Mapping[int, Points], reference_index: int,
                  turns: Mapping[int, tuple[float, float]]) -> tuple[float, float]:
    """(median nose depth, median nose residual) over the frames of `turns` (index -> (yaw, pitch) change from
    the reference frame)."""
    reference = points_by_index[reference_index]
    depths = [nose_depth(reference, points_by_index[i], yaw, pitch) for i, (yaw, pitch) in turns.items()]
    residuals = [float(np.linalg.norm(homography_residual(reference, points_by_index[i]))) for i in turns]
    return float(np.median(depths)), float(np.median(residuals))


def looks_planar(depth: float, residual: float, settings: EngineSettings, slack: float = 1.0) -> bool:
    """The plane's rule: no nose depth and a nose on the plane. `slack` < 1 makes it stricter (JPEG key frames)."""
    return depth <= slack * settings.planar_depth_threshold and residual <= planar_residual_limit(settings) / slack


def texture_threshold(depth_threshold: float) -> float:
    """A head's texture-followed nose stands about as far out as its landmarks say (0.6-1.0), a print's stays
    near 0: the texture overrules the landmarks only below half the depth that separates a head from a plane."""
    return 0.5 * depth_threshold


def planar_residual_limit(settings: EngineSettings) -> float:
    """Largest nose residual (inter-ocular distances) a plane may show: half a head's at the smallest measured turn."""
    return 0.5 * HEAD_NOSE_DEPTH * float(np.sin(np.radians(settings.planar_min_pose_deg)))
