"""Local features of a scene: ORB keypoints and binary descriptors, and their packed storage form.

ORB (OpenCV) rather than SIFT: on a 480 px frame it costs a few milliseconds on one core, and its
binary descriptors match by Hamming distance. Frames are equalised (CLAHE) first, so a ward lit by
daylight and the same ward under night lamps give the same corners.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from models.faces.decode import fit_side

FEATURE_SIDE_PX = 480
# The strongest 1,000 corners of a 480 px frame, scene and reference alike. Brute-force matching costs scene x
# reference descriptors: on the real-scene set (models/place/evaluation.py, frames re-encoded as the device
# sends them) 1,000 against 1,000 keeps the same place at 29 inliers or more and other rooms at 11 or fewer
# (2,000 each: 31 and 11) for about half the CPU time, which keeps a capture's place check under 20 ms of one
# core (scripts/bench_server.py --place, docs/benchmarks.md).
DEFAULT_FEATURES = 1000
DESCRIPTOR_BYTES = 32
MIN_SIDE_PX = 64  # twice ORB's edge threshold plus its patch, with room for one pyramid level
_HEADER = struct.Struct("<4sIII")  # magic, count, width, height
_MAGIC = b"ORB1"


@dataclass(frozen=True)
class SceneFeatures:
    points: NDArray[np.float32]       # (n, 2) x, y in the frame the features were taken on
    descriptors: NDArray[np.uint8]    # (n, 32)
    width: int
    height: int

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def pack(self) -> bytes:
        """Bytes for the database: header, float32 points, uint8 descriptors."""
        return (_HEADER.pack(_MAGIC, len(self), self.width, self.height)
                + self.points.astype("<f4").tobytes() + self.descriptors.astype(np.uint8).tobytes())

    @classmethod
    def unpack(cls, data: bytes) -> SceneFeatures:
        magic, count, width, height = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise ValueError("not packed scene features")
        start = _HEADER.size
        points = np.frombuffer(data, dtype="<f4", count=2 * count, offset=start).reshape(count, 2)
        descriptors = np.frombuffer(data, dtype=np.uint8, count=DESCRIPTOR_BYTES * count,
                                    offset=start + 8 * count).reshape(count, DESCRIPTOR_BYTES)
        return cls(points.astype(np.float32), descriptors, width, height)


def to_gray(image: NDArray[np.uint8], side_px: int = FEATURE_SIDE_PX) -> NDArray[np.uint8]:
    """Grey, at most `side_px` on its longer side, contrast-equalised (CLAHE)."""
    gray = image if image.ndim == 2 else np.asarray(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    gray = fit_side(gray, side_px)
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    return np.ascontiguousarray(clahe.apply(gray))


def extract_features(image: NDArray[np.uint8], n_features: int = DEFAULT_FEATURES,
                     side_px: int = FEATURE_SIDE_PX) -> SceneFeatures:
    """ORB features of an RGB (or grey) frame.

    Args:
        image: the scene, RGB or grey uint8.
        n_features: at most this many keypoints are kept (the strongest).
        side_px: the frame is scaled to this longer side first, so references and scenes of any camera
            resolution are compared at one scale.
    Returns:
        Keypoint positions and descriptors; empty when the frame has no corners (a blank wall).
    """
    gray = to_gray(image, side_px)
    height, width = gray.shape[:2]
    if min(height, width) < MIN_SIDE_PX:
        # ORB's pyramid fails on a frame this small (an OpenCV assertion, not an empty result): nothing to see.
        return SceneFeatures(np.zeros((0, 2), np.float32), np.zeros((0, DESCRIPTOR_BYTES), np.uint8), width, height)
    # A low FAST threshold finds corners in dim, low-contrast wards too; the ratio test and RANSAC
    # discard the weak ones that do not repeat.
    orb = cv2.ORB.create(nfeatures=n_features, fastThreshold=10, edgeThreshold=15, patchSize=31)
    keypoints, descriptors = orb.detectAndCompute(gray, None)
    if descriptors is None or not keypoints:
        return SceneFeatures(np.zeros((0, 2), np.float32), np.zeros((0, DESCRIPTOR_BYTES), np.uint8), width, height)
    points = np.array([kp.pt for kp in keypoints], dtype=np.float32)
    return SceneFeatures(points, np.ascontiguousarray(descriptors, dtype=np.uint8), width, height)
