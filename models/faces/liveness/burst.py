"""Frames with their times for a liveness judgement, from a video file, an image folder, one image or a camera.

Video is decoded by OpenCV's FFmpeg backend, which reads the container from the file's content, not its name
(a WebM stored as `.mp4` or `.mov` decodes as WebM), and applies the rotation tag phones write instead of
turning the pixels (`CAP_PROP_ORIENTATION_AUTO`, set explicitly here), so frames come out upright. A file
that opens but yields no frame, or does not open, is `ClipUnreadable`, never a crash.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.errors import ClipUnreadable
from models.faces.decode import RGBImage, load_image_file
from models.settings import EngineSettings

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


@dataclass(frozen=True)
class Burst:
    frames: list[RGBImage]
    times_s: list[float]
    description: str


def open_capture(target: int | str) -> cv2.VideoCapture:
    """cv2.VideoCapture with upright frames (rotation tag applied); raises ClipUnreadable."""
    # FFmpeg's own complaints about a broken file would land on the terminal beside our clear error.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    capture = cv2.VideoCapture(target)
    if not capture.isOpened():
        raise ClipUnreadable(f"cannot open {target!r} as video (not a video file, or a codec FFmpeg lacks)")
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return capture


def video_frames(capture: cv2.VideoCapture, fps: float, max_s: float | None, *,
                 live: bool = False) -> Iterator[tuple[RGBImage, float]]:
    """Frames thinned to about `fps`, with their times (media time for files, wall time for cameras)."""
    source_fps = capture.get(cv2.CAP_PROP_FPS)
    if live or not source_fps or source_fps <= 0 or source_fps > 1000:
        started, last = time.monotonic(), -1.0
        while capture.grab():
            now = time.monotonic() - started
            if max_s is not None and now > max_s:
                return
            if last >= 0 and now - last < 1.0 / fps * 0.9:
                continue
            ok, frame = capture.retrieve()
            if ok and frame is not None:
                last = now
                yield _rgb(frame), now
        return
    step = max(1, round(source_fps / fps))
    index = 0
    while capture.grab():
        at = index / source_fps
        if max_s is not None and at > max_s:
            return
        if index % step == 0:
            ok, frame = capture.retrieve()
            if ok and frame is not None:
                yield _rgb(frame), at
        index += 1


def read_burst(spec: str, settings: EngineSettings, *, max_s: float | None = None) -> Burst:
    """Everything a spec names: `clip.mp4[#t=START]`, `frames/` (sorted, at `liveness_fps`), `photo.jpg`, `0`."""
    spec = spec.strip()
    fps = settings.liveness_fps
    if spec.isdigit():
        capture = open_capture(int(spec))
        try:
            pairs = list(video_frames(capture, fps, max_s or settings.challenge_action_timeout_s * 3, live=True))
        finally:
            capture.release()
        return _burst(pairs, f"camera {spec}")
    path_part, _, fragment = spec.partition("#t=")
    path = Path(path_part).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        frames = [_image(p, settings) for p in files]
        return Burst(frames, [i / fps for i in range(len(frames))], f"image folder {path.name}")
    if not path.is_file():
        raise ClipUnreadable(f"{spec}: no such file, folder or camera")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return Burst([_image(path, settings)], [0.0], f"image {path.name}")
    try:
        start_s = float(fragment) if fragment else 0.0
    except ValueError as e:
        raise ClipUnreadable(f"{spec}: '#t=' needs seconds, e.g. clip.mp4#t=3.5") from e
    capture = open_capture(str(path))
    try:
        if start_s > 0:
            capture.set(cv2.CAP_PROP_POS_MSEC, start_s * 1000.0)
        pairs = list(video_frames(capture, fps, max_s))
    finally:
        capture.release()
    if not pairs:
        raise ClipUnreadable(f"{path.name}: no frame could be decoded (damaged, empty or not a video)")
    return _burst([(f, max(0.0, t)) for f, t in pairs], f"video file {path.name}")


def _burst(pairs: list[tuple[RGBImage, float]], description: str) -> Burst:
    if not pairs:
        raise ClipUnreadable(f"{description}: no frame could be read")
    first = pairs[0][1]
    return Burst([f for f, _ in pairs], [t - first for _, t in pairs], description)


def _image(path: Path, settings: EngineSettings) -> RGBImage:
    return load_image_file(path, settings)  # a bad image raises its own error (image_truncated, ...)


def _rgb(frame: np.ndarray) -> RGBImage:
    return np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
