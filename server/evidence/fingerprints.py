"""Evidence used once: fingerprints of every uploaded image, and the rule that finds one used again.

A result's crop, scene frame and liveness frames are deleted once a verified check has passed (privacy),
so a device could send the same picture again and nothing would be left to compare it with. What is kept
instead is, per image, its sha256 (a byte copy) and a perceptual hash (imagehash's DCT hash: the same
picture re-encoded, resized or trimmed a little). A later capture of the same bed, person or device whose
image lies within `max_distance` bits of an earlier one's, in another task, is `replayed_evidence`.

The distances were measured on real frames (scripts/bench_replay.py, docs/benchmarks.md "Evidence used
once"): re-encoded, resized, trimmed copies against genuine captures of the same person in the same place
seconds apart (a day apart differs more). Plain functions on bytes and rows, no database: the evidence
check (service.py) loads the earlier fingerprints and may run these anywhere.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import imagehash
import numpy as np
from PIL import Image, UnidentifiedImageError

# imagehash's 8x8 DCT hash (64 bits): a re-encoded, resized or brightened copy stays within 6 bits. The
# 16x16 one (256 bits) is finer but moves 30-60 bits on a re-encoded scene frame and 70+ on a trimmed copy.
HASH_SIDE = 8
HASH_BYTES = HASH_SIDE * HASH_SIDE // 8
# A trimmed copy is the original's middle, scaled up: each image is hashed whole and as its central 94 % and
# 88 %, and two images lie as far apart as their closest pair of views (a 3 % trim on each side then lines up).
VIEWS = (1.0, 0.94, 0.88)
DRAFT_SIDE_PX = 128
# A frame with almost no structure (a flat grey synthetic crop, a lens cap) hashes to noise around the
# median: two such frames would match by chance, so they are compared by sha256 only.
MIN_STRUCTURE_STD = 4.0


class EvidencePart(StrEnum):
    CROP = "crop"
    SCENE = "scene"
    KEY_FRAME = "key_frame"
    SESSION_FRAME = "session_frame"


# Near-duplicate distance in bits of the 256 (see the module docstring for where they come from).
MAX_DISTANCE: dict[EvidencePart, int] = {
    EvidencePart.CROP: 8,
    EvidencePart.SCENE: 8,
    EvidencePart.KEY_FRAME: 8,
    EvidencePart.SESSION_FRAME: 8,
}
# Which parts are the same kind of picture: a face crop is not compared with a full frame perceptually.
_FAMILY = {EvidencePart.CROP: "crop", EvidencePart.SCENE: "scene", EvidencePart.KEY_FRAME: "frame",
           EvidencePart.SESSION_FRAME: "frame"}


@dataclass(frozen=True)
class Fingerprint:
    part: EvidencePart
    position: int
    sha256: str
    phash: bytes | None  # HASH_BYTES bytes per view of VIEWS; None for a frame without structure (or not an image)


@dataclass(frozen=True)
class Earlier:
    """A fingerprint of an earlier capture, with whose capture it was."""

    result_id: int
    task_id: int
    fingerprint: Fingerprint


@dataclass(frozen=True)
class Reuse:
    part: EvidencePart
    position: int
    earlier_result_id: int
    earlier_task_id: int
    earlier_part: EvidencePart
    distance: int  # bits; 0 with `exact`
    exact: bool

    def as_details(self) -> dict[str, object]:
        return {"part": self.part.value, "position": self.position, "earlier_result_id": self.earlier_result_id,
                "earlier_task_id": self.earlier_task_id, "earlier_part": self.earlier_part.value,
                "distance": self.distance, "exact": self.exact}


def perceptual_hash(data: bytes) -> bytes | None:
    """The DCT hash of an image's grey levels, or None when it has too little structure to mean anything."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            # A JPEG is decoded at the smallest DCT scale that keeps DRAFT_SIDE_PX (1/2 to 1/8): the hash reads a
            # 32 px picture, and the full decode was most of its cost (a 480 px frame: 60 ms under load, now 20).
            # 64 px (1/4 of a 480 px frame) is 1 ms but puts a trimmed scene copy at 8 bits: too close to 8.
            opened.draft("L", (DRAFT_SIDE_PX, DRAFT_SIDE_PX))
            grey = opened.convert("L")
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    if float(np.asarray(grey, dtype=np.float32).std()) < MIN_STRUCTURE_STD:
        return None
    return b"".join(np.packbits(np.asarray(imagehash.phash(_middle(grey, view), hash_size=HASH_SIDE).hash,
                                           dtype=bool).ravel()).tobytes() for view in VIEWS)


def _middle(image: Image.Image, fraction: float) -> Image.Image:
    if fraction >= 1.0:
        return image
    width, height = image.size
    dx, dy = int(width * (1 - fraction) / 2), int(height * (1 - fraction) / 2)
    return image.crop((dx, dy, width - dx, height - dy))


def fingerprint(part: EvidencePart, position: int, data: bytes) -> Fingerprint:
    return Fingerprint(part, position, hashlib.sha256(data).hexdigest(), perceptual_hash(data))


def distance(a: bytes, b: bytes) -> int:
    """Bits between two images' hashes: their closest pair of views."""
    return int(_distances(a, np.frombuffer(b, np.uint8)[None, :])[0])


def _distances(probe: bytes, stack: np.ndarray) -> np.ndarray:
    """Bits between `probe` and each row of `stack` (n x views*HASH_BYTES uint8), closest views."""
    views = len(VIEWS)
    rows = stack.reshape(len(stack), views, 1, HASH_BYTES)
    mine = np.frombuffer(probe, np.uint8).reshape(1, 1, views, HASH_BYTES)
    bits = np.unpackbits(rows ^ mine, axis=3).sum(axis=3)  # n x views x views
    return bits.reshape(len(stack), -1).min(axis=1)


def find_reuse(mine: Sequence[Fingerprint], earlier: Iterable[Earlier]) -> list[Reuse]:
    """Each of `mine` that repeats an earlier capture's image: the closest earlier one, exact copies first."""
    earlier = list(earlier)
    by_sha: dict[str, Earlier] = {}
    for e in earlier:
        by_sha.setdefault(e.fingerprint.sha256, e)
    hashed = [e for e in earlier if e.fingerprint.phash is not None]
    stacks: dict[str, tuple[list[Earlier], np.ndarray]] = {}
    for family in set(_FAMILY.values()):
        rows = [e for e in hashed if _FAMILY[e.fingerprint.part] == family]
        if rows:
            stacks[family] = (rows, np.stack([np.frombuffer(e.fingerprint.phash or b"", np.uint8) for e in rows]))
    found = []
    for own in mine:
        same = by_sha.get(own.sha256)
        if same is not None:
            found.append(Reuse(own.part, own.position, same.result_id, same.task_id, same.fingerprint.part, 0, True))
            continue
        if own.phash is None or _FAMILY[own.part] not in stacks:
            continue
        rows, stack = stacks[_FAMILY[own.part]]
        bits = _distances(own.phash, stack)
        best = int(np.argmin(bits))
        if int(bits[best]) <= MAX_DISTANCE[own.part]:
            e = rows[best]
            found.append(Reuse(own.part, own.position, e.result_id, e.task_id, e.fingerprint.part, int(bits[best]),
                               False))
    return found


def corroborated(reuses: Sequence[Reuse]) -> list[Reuse]:
    """The reuses that prove a copy. A scene that is only near an earlier one is not proof by itself: a room
    that has not changed looks the same every day (real still-camera frames seconds apart and the demo's
    renders of one bed with the tablet moved and the light changed lie within MAX_DISTANCE; docs/benchmarks.md).
    It counts when it is a byte copy, or when a face image of the same earlier capture is reused too."""
    faces = {r.earlier_result_id for r in reuses if r.part != EvidencePart.SCENE}
    return [r for r in reuses if r.part != EvidencePart.SCENE or r.exact or r.earlier_result_id in faces]


def reuse_reason(reuses: Sequence[Reuse]) -> str:
    """One stable word for a finding: a sequence (two frames or more of one earlier capture) before a scene,
    a crop, a frame."""
    frames = [r for r in reuses if _FAMILY[r.part] == "frame"]
    if len({r.position for r in frames}) >= 2:
        return "repeated_sequence"
    parts = {r.part for r in reuses}
    if EvidencePart.SCENE in parts:
        return "repeated_scene"
    if EvidencePart.CROP in parts:
        return "repeated_crop"
    return "repeated_frame"
