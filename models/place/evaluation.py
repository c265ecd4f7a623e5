"""The real-scene test set: places built from the backgrounds of real indoor video clips.

A place is a clip filmed in one room from a still camera (or a gently moving phone). Its reference is an
early frame; its genuine scenes are later frames (the person has moved: a real occluder, real sensor
noise), each also relit, seen from a slightly moved camera (a small random perspective shift) and with
a person pasted standing in front. Every other place's scenes are "another room" for it. Every frame has
its faces blurred (`scene.blur_faces`) before anything looks at it, as on a device.

Read at run time from a face image folder laid out as `../shared/faces` (`video*/<clip>.mp4`); nothing
is copied. Used by tests/place and by `scripts/bench_server.py` (false-mismatch rate).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.faces.decode import fit_side
from models.place.features import SceneFeatures, extract_features
from models.place.match import match_pair
from models.place.scene import RGBImage, blur_faces

# Clips filmed in one room each, grouped by room (two clips of the same office count as one place).
PLACES: dict[str, list[str]] = {
    "office": ["video_liveness/lestari_real_frontal.mp4", "video_liveness/lestari_photo_on_phone.mp4"],
    "hall": ["video_liveness/liveportrait_d13_talking_blinks.mp4"],
    "arcade": ["video/facenet_pytorch_video.mp4"],
}
# Clips that only serve as other rooms: a stage filmed in several shots, walls too plain for a reference.
OTHER_ROOMS = ["video/short_hamilton_clip.mp4", "video_liveness/liveportrait_d9_blinks.mp4",
               "video_liveness/liveportrait_d12_mouth_turns.mp4", "video_liveness/tran_real_headturns.mp4",
               "video_liveness/liveportrait_d18_mouth_open.mp4"]
# The person pasted in front of a scene (a real person, face blurred, from a studio clip).
OCCLUDER_CLIP = "video_liveness/liveportrait_d18_mouth_open.mp4"
REFERENCE_AT = 0.05
SCENES_AT = (0.3, 0.6, 0.9)
FRAME_SIDE_PX = 640

FaceFinder = Callable[[RGBImage], list[Any]]  # an image -> its face boxes (models.faces.detect.Box)


@dataclass(frozen=True)
class Scene:
    place: str
    variant: str   # "later", "dim", "bright", "moved", "occluded", "moved_dim_occluded"
    image: RGBImage


@dataclass
class SceneSet:
    references: dict[str, RGBImage]
    scenes: list[Scene]

    def features(self) -> tuple[dict[str, SceneFeatures], list[SceneFeatures]]:
        return ({p: extract_features(r) for p, r in self.references.items()},
                [extract_features(s.image) for s in self.scenes])


def read_frames(path: Path, at: tuple[float, ...], find_faces: FaceFinder) -> list[RGBImage]:
    """Frames at fractions of the clip's length, RGB, at most 640 px, faces blurred."""
    capture = cv2.VideoCapture(str(path))
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        out = []
        for fraction in at:
            capture.set(cv2.CAP_PROP_POS_FRAMES, int((count - 1) * fraction))
            ok, frame = capture.read()
            if not ok:
                continue
            rgb = fit_side(np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)), FRAME_SIDE_PX)
            out.append(blur_faces(rgb, find_faces(rgb)))
        return out
    finally:
        capture.release()


def relit(image: RGBImage, gamma: float, gain: float, cast: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> RGBImage:
    """Other light: a gamma curve, an overall gain and a colour cast (night lamp, daylight)."""
    levels = (np.arange(256, dtype=np.float32) / 255.0) ** gamma * gain
    table = np.stack([np.clip(levels * c * 255.0, 0, 255) for c in cast], axis=1).astype(np.uint8)
    return np.asarray(cv2.LUT(image, table.reshape(256, 1, 3)), dtype=np.uint8)


def moved(image: RGBImage, rng: np.random.Generator, jitter: float = 0.05) -> RGBImage:
    """The camera (or the bed) moved a little: each corner shifts by up to `jitter` of the frame."""
    height, width = image.shape[:2]
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    shifted = (corners + rng.uniform(-jitter, jitter, (4, 2)) * [width, height]).astype(np.float32)
    warp = cv2.getPerspectiveTransform(corners, shifted)
    return np.asarray(cv2.warpPerspective(image, warp, (width, height), borderMode=cv2.BORDER_REFLECT),
                      dtype=np.uint8)


def occluded(image: RGBImage, person: RGBImage, rng: np.random.Generator, width_share: float = 0.4) -> RGBImage:
    """A person standing in front, `width_share` of the frame wide and 90 % of its height."""
    height, width = image.shape[:2]
    pw, ph = max(1, int(width * width_share)), max(1, int(height * 0.9))
    cutout = cv2.resize(person, (pw, ph), interpolation=cv2.INTER_AREA)
    left = int(rng.integers(0, max(1, width - pw)))
    out = image.copy()
    out[height - ph:, left:left + pw] = cutout
    return out


def build_scene_set(faces_dir: Path, find_faces: FaceFinder, seed: int = 20) -> SceneSet:
    """References and scenes of every place whose clips are present in `faces_dir`."""
    rng = np.random.default_rng(seed)
    occluder = read_frames(faces_dir / OCCLUDER_CLIP, (0.5,), find_faces)
    person = occluder[0] if occluder else np.full((480, 320, 3), 90, np.uint8)
    references: dict[str, RGBImage] = {}
    scenes: list[Scene] = []
    for place, clips in {**PLACES, **{f"other:{c}": [c] for c in OTHER_ROOMS}}.items():
        paths = [faces_dir / c for c in clips if (faces_dir / c).is_file()]
        if not paths:
            continue
        if not place.startswith("other:"):
            first = read_frames(paths[0], (REFERENCE_AT,), find_faces)
            if first:
                references[place] = first[0]
        for path in paths:
            for frame in read_frames(path, SCENES_AT, find_faces):
                scenes += [Scene(place, variant, image) for variant, image in _variants(frame, person, rng)]
    return SceneSet(references, scenes)


def _variants(frame: RGBImage, person: RGBImage, rng: np.random.Generator) -> Iterator[tuple[str, RGBImage]]:
    yield "later", frame
    yield "dim", relit(frame, 1.5, 0.5)
    yield "bright", relit(frame, 0.6, 1.25, (1.1, 1.0, 0.85))
    yield "moved", moved(frame, rng)
    yield "occluded", occluded(frame, person, rng)
    yield "moved_dim_occluded", relit(occluded(moved(frame, rng, 0.03), person, rng), 1.3, 0.7)


@dataclass(frozen=True)
class Rates:
    genuine: int
    false_mismatches: int
    impostor: int
    false_matches: int
    lowest_genuine: int
    highest_impostor: int

    @property
    def false_mismatch_rate(self) -> float:
        return self.false_mismatches / self.genuine if self.genuine else 0.0

    @property
    def false_match_rate(self) -> float:
        return self.false_matches / self.impostor if self.impostor else 0.0


def evaluate(scene_set: SceneSet, min_inliers: int) -> Rates:
    """Every scene against every reference: same place must reach `min_inliers`, another must not."""
    references, scenes = scene_set.features()
    genuine: list[int] = []
    impostor: list[int] = []
    for scene, features in zip(scene_set.scenes, scenes, strict=True):
        for place, reference in references.items():
            score = match_pair(features, reference)[0]
            (genuine if scene.place == place else impostor).append(score)
    return Rates(len(genuine), sum(s < min_inliers for s in genuine), len(impostor),
                 sum(s >= min_inliers for s in impostor), min(genuine, default=0), max(impostor, default=0))
