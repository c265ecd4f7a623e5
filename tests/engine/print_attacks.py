"""Print attacks made from real still photos: the photo, flat or bent round a cylinder (a cup, a curled
sheet), moved in front of a pinhole camera through a random sequence of 3-D rotations and shifts.

Each frame is rendered by casting the camera's rays onto the photo's surface (`cv2.remap`), so perspective,
bending and motion are those of a real sheet of paper. Nothing in the rendering knows what the liveness judge
measures; `judged_attacks` then shows each sequence to the judge as a device would, against a random challenge.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.faces.decode import load_image_file
from models.faces.detect import Box, detect_faces
from models.faces.liveness.actions import Action, draw_challenge
from models.faces.liveness.judge import check_challenge
from models.faces.liveness.passive import LivenessResult
from models.faces.liveness.track import Landmarker, track_frames
from models.settings import EngineSettings


@dataclass(frozen=True)
class Attack:
    frames: list[np.ndarray]
    times_s: list[float]
    bend_radius: float | None  # in photo widths; None = flat
    max_rotation_deg: float


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def render(photo: np.ndarray, rotation: np.ndarray, translation: np.ndarray, bend: float | None,
           background: np.ndarray, focal: float) -> np.ndarray:
    """One camera frame of `photo` (1 unit wide) at pose (rotation, translation), bent with radius `bend`."""
    height, width = background.shape[:2]
    ph, pw = photo.shape[:2]
    aspect = ph / pw
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    rays = np.stack([(xs - width / 2) / focal, (ys - height / 2) / focal, np.ones_like(xs)], axis=-1)
    # Into the sheet's own frame: origin at its centre, x along its width, y down, z away from the camera.
    inv = rotation.T
    origin = inv @ (-translation)
    d = rays @ inv.T
    if bend is None:
        t = -origin[2] / d[..., 2]
        px, py = origin[0] + t * d[..., 0], origin[1] + t * d[..., 1]
        u = px
    else:
        # Cylinder with axis along y through (0, *, bend): the sheet's centre line touches z = 0 and its sides
        # curve away from the camera, as a photo wrapped round a cup.
        ox, oz = origin[0], origin[2] - bend
        a = d[..., 0] ** 2 + d[..., 2] ** 2
        b = 2 * (ox * d[..., 0] + oz * d[..., 2])
        c = ox ** 2 + oz ** 2 - bend ** 2
        disc = b ** 2 - 4 * a * c
        root = np.sqrt(np.maximum(disc, 0))
        t = (-b - root) / (2 * a)
        t = np.where(disc >= 0, t, np.nan)
        px, pz = origin[0] + t * d[..., 0], origin[2] + t * d[..., 2]
        py = origin[1] + t * d[..., 1]
        u = bend * np.arctan2(px, bend - pz)  # arc length along the sheet
    map_x = ((u + 0.5) * pw).astype(np.float32)
    map_y = ((py / aspect + 0.5) * ph).astype(np.float32)
    valid = (map_x >= 0) & (map_x < pw - 1) & (map_y >= 0) & (map_y < ph - 1) & np.isfinite(map_x)
    out = cv2.remap(photo, np.nan_to_num(map_x, nan=-1), np.nan_to_num(map_y, nan=-1), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT)
    return np.where(valid[..., None], out, background).astype(np.uint8)


def portrait(photo: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    """The printed part of a photo: the face (css box) with a random margin, as a portrait print is cut."""
    top, right, bottom, left = box
    margin = rng.uniform(0.4, 1.2)
    h, w = bottom - top, right - left
    t, b = max(0, int(top - margin * h)), min(photo.shape[0], int(bottom + margin * h * 1.3))
    lft, rgt = max(0, int(left - margin * w)), min(photo.shape[1], int(right + margin * w))
    return np.ascontiguousarray(photo[t:b, lft:rgt])


def attack_sequence(photo: np.ndarray, rng: np.random.Generator, *, frames: int = 24, fps: float = 10.0,
                    size: tuple[int, int] = (640, 480), max_rotation_deg: float = 30.0) -> Attack:
    """A random print attack: flat or bent, swung through random rotations and moved, as a hand would."""
    width, height = size
    focal = float(width)
    bend = None if rng.random() < 0.4 else float(rng.uniform(0.45, 2.5))
    # Keyframes of the motion, interpolated: a hand turning and tilting the photo to fake head movement.
    keys = 4
    yaws = rng.uniform(-max_rotation_deg, max_rotation_deg, keys)
    pitches = rng.uniform(-max_rotation_deg * 0.6, max_rotation_deg * 0.6, keys)
    rolls = rng.uniform(-10, 10, keys)
    distance = float(rng.uniform(1.6, 2.6))  # photo widths: the face fills a good part of the frame
    shifts = rng.uniform(-0.15, 0.15, (keys, 2))
    yaws[0] = pitches[0] = 0.0
    background = np.full((height, width, 3), rng.integers(40, 200, 3), dtype=np.uint8)
    background = cv2.add(background, rng.integers(0, 20, (height, width, 3), dtype=np.uint8))
    at = np.linspace(0, keys - 1, frames)
    out = []
    for k in at:
        lo = int(np.floor(k))
        hi = min(lo + 1, keys - 1)
        w = k - lo
        angles = [(1 - w) * v[lo] + w * v[hi] for v in (yaws, pitches, rolls)]
        rotation = _rotation(*angles)
        shift = (1 - w) * shifts[lo] + w * shifts[hi]
        translation = np.array([shift[0], shift[1], distance])
        frame = render(photo, rotation, translation, bend, background, focal)
        noise = rng.normal(0, 2.0, frame.shape)
        out.append(np.clip(frame + noise, 0, 255).astype(np.uint8))
    return Attack(out, [i / fps for i in range(frames)], bend, max_rotation_deg)


@dataclass(frozen=True)
class JudgedAttack:
    photo: Path
    attack: Attack
    challenge: list[Action]
    result: LivenessResult | None  # None: the sheet turned too far for the detector, nothing a device could judge

    @property
    def refused_by_3d_test(self) -> bool:
        return self.result is not None and bool({"planar_motion", "no_3d_motion"} & set(self.result.reasons))


def judged_attacks(photos: Sequence[Path], landmarker: Landmarker, settings: EngineSettings, seed: int, *,
                   frames: int = 12, fps: float = 5.0, max_rotation_deg: float = 30.0,
                   faceless_limit: int = 100) -> Iterator[JudgedAttack]:
    """Endless print attacks from random `photos` (a repeatable draw per `seed`), each tracked and judged against
    a random server challenge. Photos in which no face is found are passed over."""
    rng, draw = np.random.default_rng(seed), random.Random(seed)
    boxes: dict[Path, Box | None] = {}
    faceless = 0
    while True:
        path = photos[int(rng.integers(len(photos)))]
        photo = load_image_file(path, settings)
        if path not in boxes:
            found = detect_faces(photo, settings, thorough=False)
            boxes[path] = found[0] if found else None
        box = boxes[path]
        if box is None:
            faceless += 1
            if faceless >= faceless_limit:
                raise RuntimeError("hardly any photo shows a face")
            continue
        attack = attack_sequence(portrait(photo, (box.top, box.right, box.bottom, box.left), rng), rng,
                                 frames=frames, fps=fps, max_rotation_deg=max_rotation_deg)
        track = track_frames(attack.frames, attack.times_s, landmarker, settings)
        if len(track.tracked) < 3:
            yield JudgedAttack(path, attack, [], None)
            continue
        challenge = draw_challenge(draw, settings.challenge_length)
        yield JudgedAttack(path, attack, challenge, check_challenge(track, challenge, settings))
