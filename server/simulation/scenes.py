"""Synthetic ward scenes for the demo and the no-faces tests: procedural rooms, not photographs.

A fresh machine has no real images, yet every simulated face capture must carry a scene key frame and
every simulated bed a reference. Each bed gets a room rendered from a seeded RNG (walls, window, cabinets,
posters with marks, a bed with pillow and rails, a monitor): structured and textured like a room, so the
real ORB/homography check runs on it unchanged. A capture of the bed is the same room seen again with
other light, a slightly moved tablet, the patient in front and sensor noise; "the tablet carried home"
is a capture of a different, home-like room. The accuracy figures of the place check come from the real
scene set (models/place/evaluation.py), never from these.
"""

from __future__ import annotations

import cv2
import numpy as np

from models.place.evaluation import moved, relit
from models.place.scene import RGBImage

SIZE = (480, 360)  # width, height: the size of a device's scene key frame
JPEG_QUALITY = 75


def _color(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, 3))  # type: ignore[return-value]


def render_room(seed: int, *, home: bool = False) -> RGBImage:
    """A room: the same seed gives the same image on every machine."""
    rng = np.random.default_rng(seed)
    width, height = SIZE
    wall = np.array(_color(rng, 150, 230) if not home else _color(rng, 120, 200), dtype=np.float32)
    shade = np.linspace(0.85, 1.05, height, dtype=np.float32)[:, None, None]
    image = np.clip(wall[None, None, :] * shade * np.ones((height, width, 1), np.float32), 0, 255).astype(np.uint8)
    floor_top = int(height * rng.uniform(0.68, 0.78))
    image[floor_top:] = _color(rng, 60, 140)
    if not home:  # tiles in perspective, their vanishing point and size differing from room to room
        vanish = int(rng.integers(width // 5, 4 * width // 5))
        for x in range(-width, 2 * width, int(rng.integers(30, 70))):
            cv2.line(image, (vanish + (x - vanish) // 3, floor_top), (x, height), _color(rng, 30, 90), 1)
        for y in range(floor_top + int(rng.integers(3, 12)), height, int(rng.integers(12, 26))):
            cv2.line(image, (0, y), (width, y), _color(rng, 30, 90), 1)
    _window(image, rng, floor_top)
    for _ in range(int(rng.integers(4, 7))):
        _furniture(image, rng, floor_top)
    if home:
        _sofa(image, rng, floor_top)
    else:
        _bed(image, rng, floor_top)
        _monitor(image, rng)
    return image


def _window(image: RGBImage, rng: np.random.Generator, floor_top: int) -> None:
    width = image.shape[1]
    w, h = int(rng.integers(80, 150)), int(rng.integers(70, 120))
    x, y = int(rng.integers(5, width - w - 5)), int(rng.integers(10, max(11, floor_top - h - 60)))
    cv2.rectangle(image, (x, y), (x + w, y + h), _color(rng, 170, 250), -1)
    for i in range(1, int(rng.integers(2, 4))):
        cv2.line(image, (x + i * w // 3, y), (x + i * w // 3, y + h), (240, 240, 240), 3)
    cv2.line(image, (x, y + h // 2), (x + w, y + h // 2), (240, 240, 240), 3)
    cv2.rectangle(image, (x, y), (x + w, y + h), _color(rng, 40, 120), 4)


def _furniture(image: RGBImage, rng: np.random.Generator, floor_top: int) -> None:
    """A cabinet, a notice board or a poster, with drawers, handles or rows of marks."""
    width = image.shape[1]
    w, h = int(rng.integers(40, 120)), int(rng.integers(40, 130))
    x, y = int(rng.integers(0, width - w)), int(rng.integers(5, max(6, floor_top - h // 2)))
    cv2.rectangle(image, (x, y), (x + w, y + h), _color(rng, 40, 230), -1)
    cv2.rectangle(image, (x, y), (x + w, y + h), _color(rng, 0, 80), 2)
    kind = int(rng.integers(0, 3))
    if kind == 0:  # drawers with handles
        rows = int(rng.integers(2, 5))
        for r in range(1, rows):
            yy = y + r * h // rows
            cv2.line(image, (x, yy), (x + w, yy), (30, 30, 30), 2)
        for r in range(rows):
            cv2.circle(image, (x + w // 2, y + r * h // rows + h // (2 * rows)), 3, (20, 20, 20), -1)
    elif kind == 1:  # a poster: rows of "text"
        for yy in range(y + 6, y + h - 6, 8):
            xx = x + 5
            while xx < x + w - 8:
                word = int(rng.integers(4, 18))
                cv2.rectangle(image, (xx, yy), (min(xx + word, x + w - 5), yy + 3), _color(rng, 0, 90), -1)
                xx += word + 4
    else:  # a board with pinned notes
        for _ in range(int(rng.integers(3, 8))):
            nw, nh = int(rng.integers(10, 25)), int(rng.integers(10, 25))
            nx, ny = x + int(rng.integers(0, max(1, w - nw))), y + int(rng.integers(0, max(1, h - nh)))
            cv2.rectangle(image, (nx, ny), (nx + nw, ny + nh), _color(rng, 120, 255), -1)
            cv2.circle(image, (nx + nw // 2, ny + 2), 2, (200, 20, 20), -1)


def _bed(image: RGBImage, rng: np.random.Generator, floor_top: int) -> None:
    width, height = image.shape[1], image.shape[0]
    w = int(rng.integers(190, 260))
    x = int(rng.integers(10, width - w - 10))
    top = floor_top - int(rng.integers(70, 100))
    cv2.rectangle(image, (x, top - 50), (x + w, top + 10), _color(rng, 60, 200), -1)   # headboard
    cv2.rectangle(image, (x, top - 50), (x + w, top + 10), (40, 40, 40), 2)
    cv2.rectangle(image, (x - 10, top), (x + w + 10, min(height - 1, floor_top + 60)), _color(rng, 200, 250), -1)
    cv2.ellipse(image, (x + w // 2, top + 12), (w // 4, 14), 0, 0, 360, (245, 245, 245), -1)  # pillow
    for i in range(0, w + 20, 18):  # rails
        cv2.line(image, (x - 10 + i, top + 30), (x - 10 + i, top + 55), (120, 120, 130), 2)
    cv2.line(image, (x - 10, top + 30), (x + w + 10, top + 30), (90, 90, 100), 3)


def _monitor(image: RGBImage, rng: np.random.Generator) -> None:
    width = image.shape[1]
    x, y = int(rng.integers(10, width - 90)), int(rng.integers(15, 90))
    cv2.rectangle(image, (x, y), (x + 80, y + 55), (25, 30, 35), -1)
    for i in range(1, 4):
        cv2.line(image, (x, y + i * 14), (x + 80, y + i * 14), (40, 70, 50), 1)
    wave = np.array([[x + 4 + i * 4, y + 28 + int(12 * np.sin(i * rng.uniform(0.5, 1.2)))] for i in range(19)],
                    dtype=np.int32)
    cv2.polylines(image, [wave], False, (60, 230, 90), 1)
    cv2.line(image, (x + 40, y + 55), (x + 40, y + 90), (90, 90, 90), 3)


def _sofa(image: RGBImage, rng: np.random.Generator, floor_top: int) -> None:
    width = image.shape[1]
    w = int(rng.integers(200, 300))
    x = int(rng.integers(0, width - w))
    color = _color(rng, 40, 180)
    cv2.rectangle(image, (x, floor_top - 90), (x + w, floor_top + 20), color, -1)
    for i in range(3):
        cv2.rectangle(image, (x + 10 + i * (w - 20) // 3, floor_top - 60),
                      (x + (i + 1) * (w - 20) // 3, floor_top), tuple(max(0, c - 30) for c in color), 2)
    tx = int(rng.integers(0, width - 120))
    cv2.rectangle(image, (tx, 30), (tx + 120, 100), (15, 15, 15), -1)  # a television
    cv2.rectangle(image, (tx + 5, 35), (tx + 115, 95), _color(rng, 40, 120), -1)


def _patient(image: RGBImage, rng: np.random.Generator) -> RGBImage:
    """Someone in front of the camera: a body and a head, the head already blurred as a device does."""
    out = image.copy()
    width, height = SIZE
    cx = int(rng.integers(width // 4, 3 * width // 4))
    cv2.ellipse(out, (cx, height), (int(width * 0.16), int(height * 0.45)), 0, 180, 360, _color(rng, 30, 160), -1)
    head = (cx, int(height * 0.5))
    cv2.circle(out, head, int(height * 0.12), (170, 140, 120), -1)
    cv2.GaussianBlur(out, (0, 0), 1.0, dst=out)
    return out


def capture_of(room: RGBImage, rng: np.random.Generator) -> RGBImage:
    """The room seen again at a check: moved tablet, other light, the patient in front, sensor noise."""
    view = moved(room, rng, jitter=0.03)
    view = relit(view, float(rng.uniform(0.8, 1.25)), float(rng.uniform(0.75, 1.1)))
    view = _patient(view, rng)
    noise = np.empty(view.shape, np.int16)
    cv2.randn(noise, 0, 3)
    return np.clip(view.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def bed_seed(bed_id: int) -> int:
    return 20_000_000 + bed_id


def _jpeg(image: RGBImage) -> bytes:
    # cv2's encoder: a county's thousands of references are made in seconds (PIL's takes twice as long).
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    assert ok
    return data.tobytes()


def reference_jpeg(bed_id: int) -> bytes:
    """The reference frame of a simulated bed (what `bedcheck-edge reference` would have captured)."""
    return _jpeg(render_room(bed_seed(bed_id)))


def scene_jpeg(bed_id: int, rng: np.random.Generator, *, at_home: bool = False) -> bytes:
    """A scene key frame of a check at this bed, or, `at_home`, wherever the tablet was carried."""
    room = render_room(bed_seed(bed_id) + 7_000_000, home=True) if at_home else render_room(bed_seed(bed_id))
    return _jpeg(capture_of(room, rng))
