"""Camera files for Chromium's fake capture device (`--use-file-for-fake-video-capture=FILE.y4m`), written
into a temporary folder at test time from frames the tests build (never kept, never committed).

Chromium starts the file at its first frame when the page opens the camera and loops it. The app opens the
camera only once its detector is ready, so a file that begins with `lead_s` seconds without a face (a bed's
empty pillow: plain grey) starts the app's session at the face's first frame, and the session's prompt times
line up with the file's timeline after the lead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

Frame = np.ndarray  # RGB, uint8


def even(frame: Frame) -> Frame:
    """I420 needs even sides."""
    height, width = frame.shape[:2]
    return frame[: height - height % 2, : width - width % 2]


def write_y4m(path: Path, frames: Iterable[Frame], fps: int) -> Path:
    frames = iter(frames)
    first = even(next(frames))
    height, width = first.shape[:2]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for frame in (first, *frames):
            frame = even(frame)
            if frame.shape[:2] != (height, width):
                frame = cv2.resize(frame, (width, height))
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def resample(frames: Sequence[Frame], times_s: Sequence[float], fps: int) -> list[Frame]:
    """The frames shown at a steady `fps` (each output frame is the latest input frame at its time)."""
    out, j = [], 0
    count = int(times_s[-1] * fps) + 1
    for k in range(count):
        t = k / fps
        while j + 1 < len(times_s) and times_s[j + 1] <= t:
            j += 1
        out.append(frames[j])
    return out


def with_lead(frames: Sequence[Frame], fps: int, lead_s: float) -> list[Frame]:
    """`lead_s` seconds of an empty grey view before the frames (no face: the app waits for one)."""
    blank = np.full_like(even(frames[0]), 128)
    return [blank] * int(round(lead_s * fps)) + list(frames)
