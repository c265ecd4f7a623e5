"""Face landmarks from MediaPipe's Face Mesh model, run by OpenCV, in the 68-point layout the liveness code reads.

Why this model: dlib's 68-point predictor is trained on iBUG 300-W, whose terms exclude commercial use; Face Mesh
is Apache-2.0. Its file ships inside the mediapipe 0.10.21 wheel, which is installed without its dependencies
and never imported (models/faces/model_files.py reads and sha256-checks the file); OpenCV's TFLite importer
runs it.

The network, as measured here on real faces: input NCHW 1x3x192x192, RGB scaled to [0, 1] (an NHWC blob fails
in OpenCV's first convolution); outputs `conv2d_21`, 1404 numbers = 468 points (x, y, z) in the 192x192 input's
pixels (z relative depth, negative towards the camera: the nose's points 4, 1, 5 are the nearest), and
`conv2d_31`, one logit of a face being present. About 3 ms of one core per face.

The crop follows MediaPipe's own pipeline: a square 1.5 times the detector's box round its centre, scaled to
192 px. The mesh is fitted to an upright face, and on a rolled head (a patient lying on a pillow) it finds only
part of the roll (measured: a face turned 30 degrees in the image read as 18, the eyes' aspect ratio 27 % off):
while a fit finds the head rolled more than `_ROLL_REFIT_DEG` against its crop, it is fitted again on a crop
turned by the roll found (at most `_MAX_REFITS` times: 60 degrees needs three). An upright face costs one fit.

Detection uses the SFace engine's YuNet (cv2.FaceDetectorYN): on the whole frame reduced to
`liveness_detect_side_px`, or in a window round the last box scaled so the face is about `_WINDOW_FACE_PX`.

`MESH_TO_68` picks, for every point of the 68-point iBUG layout that geometry.py measures, the mesh point at the
same place on the face (checked by eye on frontal and turned frames of the liveness clips): the eye contours'
corners and the upper and lower lid points at a third and two thirds of the eye's width (the EAR's p2, p3, p5,
p6, vertically paired), the inner lips' corners and three vertical pairs (the MAR's), the nose tip (the mesh's
nearest point), the nose bridge and the nostril base, the brows, and the face oval from ear height to the chin.
The mesh's oval points are fixed on the skin, not on the visible silhouette as dlib's jaw is: on a turned head
the far side's points are where the skin is, behind the profile, which suits the rigid 3-D model of the pose.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from models.faces.decode import RGBImage
from models.faces.detect import Box
from models.faces.liveness.geometry import Points
from models.faces.model_files import FACE_MESH, cached_verified
from models.settings import EngineSettings

MESH_POINTS = 468
_INPUT_PX = 192
_LANDMARKS_OUTPUT, _PRESENCE_OUTPUT = "conv2d_21", "conv2d_31"
# Side of the square crop over the detector box's longer side (MediaPipe's detection-to-ROI scale).
_CROP_SCALE = 1.5
# Below this face-presence probability the crop holds no face (MediaPipe's own tracking threshold).
_MIN_PRESENCE = 0.5
# Small enough that a refit changes the eye ratio by a few per cent at most (15 degrees: 0.246 -> 0.225).
_ROLL_REFIT_DEG = 6.0
_MAX_REFITS = 3
_WINDOW_FACE_PX = 96
# A tenth of a second between detections moves a face far less than this (fraction of its size, each side).
_WINDOW_MARGIN = 0.35

# The mesh index at each of the 68 iBUG positions (index = the 68-point number; geometry.py's layout).
MESH_TO_68: tuple[int, ...] = (
    # 0-16 face oval from the image's left ear height round the chin (8 = 152) to the right
    127, 234, 93, 132, 58, 172, 136, 149, 152, 378, 365, 397, 288, 361, 323, 454, 356,
    # 17-21 brow on the image's left (outer to inner), 22-26 the other (inner to outer)
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # 27-30 nose bridge to tip (4: the mesh's nearest point), 31-35 nostril base left to right (33 subnasale)
    168, 197, 5, 4, 98, 97, 2, 326, 327,
    # 36-41 eye on the image's left: outer corner, upper lid at 1/3 and 2/3, inner corner, lower lid 2/3, 1/3
    33, 160, 158, 133, 153, 144,
    # 42-47 the other eye: inner corner, upper lid, outer corner, lower lid
    362, 385, 387, 263, 373, 380,
    # 48-59 outer lips from the left corner over the upper lip (51 its middle) and back under the lower one
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,
    # 60-67 inner lips: left corner, upper 61-63, right corner, lower 65-67 (pairs 61/67, 62/66, 63/65)
    78, 81, 13, 311, 308, 402, 14, 178,
)


@dataclass(frozen=True)
class MeshFit:
    """One Face Mesh fit in image pixels: 468 points (x, y) and the face-presence probability."""

    points: NDArray[np.float64]  # (468, 2)
    presence: float

    @property
    def points68(self) -> Points:
        return np.asarray(self.points[list(MESH_TO_68)], dtype=np.float64)


class _Network(threading.local):
    net: Any = None


_local = _Network()


def _network() -> Any:
    """One network per thread (an OpenCV Net keeps its input as state), from the checked bytes."""
    if _local.net is None:
        _local.net = cv2.dnn.readNetFromTFLite(np.frombuffer(cached_verified(FACE_MESH), dtype=np.uint8))
    return _local.net


def load_model() -> None:
    """Reads and checks the model file now (raises ModelFileMissing / ModelFileAltered), not at the first face."""
    _network()


def _fit_crop(image: RGBImage, centre: tuple[float, float], side: float, roll_deg: float) -> MeshFit:
    """The mesh in the square of `side` px round `centre`, turned by `roll_deg` (the head's roll) upright."""
    scale = _INPUT_PX / max(side, 1.0)
    matrix = cv2.getRotationMatrix2D(centre, roll_deg, scale)
    matrix[0, 2] += _INPUT_PX / 2.0 - centre[0]
    matrix[1, 2] += _INPUT_PX / 2.0 - centre[1]
    crop = cv2.warpAffine(image, matrix, (_INPUT_PX, _INPUT_PX), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT)
    blob = crop.transpose(2, 0, 1)[np.newaxis].astype(np.float32) * np.float32(1.0 / 255.0)
    net = _network()
    net.setInput(blob)
    landmarks, presence = net.forward([_LANDMARKS_OUTPUT, _PRESENCE_OUTPUT])
    in_crop = np.asarray(landmarks, dtype=np.float64).reshape(MESH_POINTS, 3)[:, :2]
    back = cv2.invertAffineTransform(matrix)
    points = in_crop @ back[:, :2].T + back[:, 2]
    logit = float(np.asarray(presence).ravel()[0])
    return MeshFit(points, float(1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0)))))


def _roll_deg(points: NDArray[np.float64]) -> float:
    """The head's roll from the outer eye corners, degrees (positive: the image-right eye lower)."""
    left, right = points[33], points[263]
    return float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))


def fit_mesh(image: RGBImage, box: Box) -> MeshFit:
    """The Face Mesh fit of the face in `box` (a detector's box, or one interpolated between two)."""
    centre = ((box.left + box.right) / 2.0, (box.top + box.bottom) / 2.0)
    side = max(box.width, box.height) * _CROP_SCALE
    angle = 0.0
    fit = _fit_crop(image, centre, side, angle)
    for _ in range(_MAX_REFITS):
        roll = _roll_deg(fit.points)
        if abs(roll - angle) <= _ROLL_REFIT_DEG or fit.presence < _MIN_PRESENCE:
            break
        # Turning the crop by the roll about its centre brings the head upright.
        angle = roll
        fit = _fit_crop(image, centre, side, angle)
    return fit


@dataclass
class MeshLandmarker:
    """YuNet for the face's box, Face Mesh for its landmarks: the `Landmarker` of every liveness path."""

    settings: EngineSettings
    # Detection settings for the whole frame (reduced for speed) and for a window already scaled.
    _whole: EngineSettings = field(init=False, repr=False)
    _window: EngineSettings = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._whole = self.settings.model_copy(update={"detect_max_side_px": self.settings.liveness_detect_side_px})
        self._window = self.settings.model_copy(update={"detect_max_side_px": 4096})

    def detect(self, image: RGBImage, near: Box | None = None) -> Box | None:
        from models.faces import sface

        if near is not None:
            found = self._detect_near(image, near)
            if found is not None:
                return found
        faces = sface.detect(image, self._whole)
        return faces[0].box if faces else None

    def _detect_near(self, image: RGBImage, near: Box) -> Box | None:
        from models.faces import sface

        height, width = image.shape[:2]
        size = max(near.width, near.height, 1)
        margin = int(size * _WINDOW_MARGIN)
        top, bottom = max(0, near.top - margin), min(height, near.bottom + margin)
        left, right = max(0, near.left - margin), min(width, near.right + margin)
        window: np.ndarray = image[top:bottom, left:right]
        if window.shape[0] < 8 or window.shape[1] < 8:
            return None
        scale = min(1.0, _WINDOW_FACE_PX / size)
        if scale < 1.0:
            window = cv2.resize(window, (max(1, int(window.shape[1] * scale)), max(1, int(window.shape[0] * scale))),
                                interpolation=cv2.INTER_AREA)
        faces = sface.detect(np.ascontiguousarray(window), self._window)
        if not faces:
            return None
        box = faces[0].box
        return Box(int(top + box.top / scale), int(left + box.right / scale), int(top + box.bottom / scale),
                   int(left + box.left / scale))

    def landmarks(self, image: RGBImage, box: Box) -> Points | None:
        fit = fit_mesh(image, box)
        return fit.points68 if fit.presence >= _MIN_PRESENCE else None
