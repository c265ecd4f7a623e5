"""The 3-D test's texture witness on rendered bursts (no faces needed).

The landmarks of every burst here are those of a real head turning (the mean 3-D face rotated and projected):
they show the nose's parallax, as dlib's predictor shows it when it lays a turned head over a hard-swung print.
Only the texture differs: in one burst it moves as one plane (a print), in the other it moves with the landmarks
(a head). The witness must overrule the landmarks for the first and agree with them for the second.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.faces.detect import Box
from models.faces.liveness.challenge import measure_track, neutral_frame
from models.faces.liveness.geometry import _MEAN_FACE_3D, FACE_PLANE
from models.faces.liveness.planarity import Planarity, PlanarityResult, judge_planarity
from models.faces.liveness.track import FaceTrack, TrackedFrame
from models.settings import EngineSettings

SIZE = (640, 480)
YAWS = [0.0, 0.0, 4.0, 8.0, 12.0, 16.0, 20.0, 22.0, 22.0, 20.0]


def _head_landmarks(yaw_deg: float) -> np.ndarray:
    """The mean face turned by `yaw_deg` (nose towards the image's right), 60 cm from a camera of focal 640."""
    y = np.radians(yaw_deg)
    rotation = np.array([[np.cos(y), 0, -np.sin(y)], [0, 1, 0], [np.sin(y), 0, np.cos(y)]])
    points = _MEAN_FACE_3D @ rotation.T + np.array([0.0, 0.0, 600.0])
    focal = SIZE[0]
    return np.stack([focal * points[:, 0] / points[:, 2] + SIZE[0] / 2,
                     focal * points[:, 1] / points[:, 2] + SIZE[1] / 2], axis=1)


def _texture(rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(128, 60, (SIZE[1], SIZE[0])).astype(np.float32)
    grey = np.clip(cv2.GaussianBlur(noise, (0, 0), 2.0), 0, 255).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)


def _warp_as_plane(image: np.ndarray, reference: np.ndarray, frame: np.ndarray) -> np.ndarray:
    matrix, _ = cv2.findHomography(reference[FACE_PLANE], frame[FACE_PLANE], 0)
    return cv2.warpPerspective(image, matrix, SIZE, borderMode=cv2.BORDER_REFLECT)


def _warp_with_landmarks(image: np.ndarray, reference: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Every pixel moved as its nearest landmarks moved (inverse-distance weights): texture glued to the head."""
    ys, xs = np.mgrid[0:SIZE[1]:4, 0:SIZE[0]:4].astype(np.float64)
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
    shift = frame - reference
    d2 = ((grid[:, None, :] - frame[None, :, :]) ** 2).sum(axis=2) + 1.0
    weights = 1.0 / d2 ** 2
    back = (weights @ shift) / weights.sum(axis=1, keepdims=True)
    map_x = cv2.resize((grid[:, 0] - back[:, 0]).reshape(xs.shape).astype(np.float32), SIZE)
    map_y = cv2.resize((grid[:, 1] - back[:, 1]).reshape(ys.shape).astype(np.float32), SIZE)
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _burst(glued_to_head: bool) -> FaceTrack:
    texture = _texture(np.random.default_rng(20))
    landmarks = [_head_landmarks(yaw) for yaw in YAWS]
    warp = _warp_with_landmarks if glued_to_head else _warp_as_plane
    images = [warp(texture, landmarks[0], points) for points in landmarks]
    frames = [TrackedFrame(i, i / 15.0, points, Box(0, 1, 1, 0), True) for i, points in enumerate(landmarks)]
    return FaceTrack(len(frames), SIZE, frames, images=images)


def _verdict(track: FaceTrack, settings: EngineSettings, *, with_images: bool) -> PlanarityResult:
    measures = measure_track(track)
    reference = neutral_frame(measures, settings, None)
    assert reference is not None
    points = {f.index: f.points for f in track.tracked}
    return judge_planarity(points, measures, reference, settings, track.images if with_images else None)


def test_landmarks_alone_see_a_head_in_both_bursts() -> None:
    settings = EngineSettings()
    for glued in (True, False):
        assert _verdict(_burst(glued), settings, with_images=False).verdict == Planarity.SOLID


def test_texture_moving_as_one_plane_overrules_the_landmarks() -> None:
    settings = EngineSettings()
    result = _verdict(_burst(glued_to_head=False), settings, with_images=True)
    assert result.verdict == Planarity.PLANAR, result
    assert result.texture_depth is not None and result.texture_depth < 0.5 * settings.planar_depth_threshold


def test_texture_moving_with_the_head_confirms_it() -> None:
    settings = EngineSettings()
    result = _verdict(_burst(glued_to_head=True), settings, with_images=True)
    assert result.verdict == Planarity.SOLID, result
    # The rendered texture blurs the nose's parallax into its surroundings, so it shows a little less than the
    # landmarks do, and far more than a plane.
    assert result.texture_depth is not None and result.texture_depth > 0.5 * settings.planar_depth_threshold
