"""Where frames come from: a camera index, an RTSP/HTTP stream, a video file or a folder of images.

A source yields a capture burst: `burst_frames` RGB frames, every `stride`-th frame of a stream or video
so the burst spans about a second (long enough for a blink). A video file may name its start as
`clip.mp4#t=4.5` (seconds), as in a media-fragment URI. Images are decoded through models.faces.decode
(EXIF rotation, size caps, truncation check).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from models.errors import BedcheckError
from models.faces.decode import RGBImage, fit_side, load_image_file
from models.faces.liveness.burst import ClipUnreadable, open_capture, video_frames
from models.settings import EngineSettings

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")


class SourceError(Exception):
    """The source cannot be opened or read."""


class FrameSource(Protocol):
    @property
    def description(self) -> str: ...

    def burst(self, frames: int, stride: int) -> list[RGBImage]: ...

    def timed(self, fps: float, max_s: float) -> Iterator[tuple[RGBImage, float]]:
        """Frames at about `fps` with their times in seconds (media time, or wall time for a live camera)."""
        ...

    def close(self) -> None: ...


@dataclass
class ImageFolderSource:
    """Images of a folder, sorted by name, as consecutive frames (tests and simulations)."""

    folder: Path
    engine_settings: EngineSettings

    @property
    def description(self) -> str:
        return f"image folder {self.folder}"

    def burst(self, frames: int, stride: int) -> list[RGBImage]:
        paths = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        out = []
        for path in paths[:frames]:
            try:
                out.append(load_image_file(path, self.engine_settings))
            except BedcheckError:
                continue  # one unreadable file is a dropped frame, not a failed check
        return out

    def timed(self, fps: float, max_s: float) -> Iterator[tuple[RGBImage, float]]:
        # A folder is a recorded burst: its images are consecutive frames at `fps`.
        for index, frame in enumerate(self.burst(10_000, 1)):
            if index / fps > max_s:
                return
            yield frame, index / fps

    def close(self) -> None:
        pass


class CaptureSource:
    """cv2.VideoCapture over a camera index, a stream URL or a video file."""

    def __init__(self, target: int | str, description: str, start_s: float = 0.0, *, live: bool = False) -> None:
        self.description = description
        self.live = live
        try:
            # Upright frames whatever the container: phones tag rotation instead of turning the pixels.
            self._capture = open_capture(target)
        except ClipUnreadable as e:
            raise SourceError(f"cannot open {description}") from e  # never echo the target: URLs hold credentials
        if start_s > 0:
            self._capture.set(cv2.CAP_PROP_POS_MSEC, start_s * 1000.0)
        self._start_s = start_s

    def timed(self, fps: float, max_s: float) -> Iterator[tuple[RGBImage, float]]:
        first: float | None = None
        for frame, at in video_frames(self._capture, fps, None if self.live else max_s,
                                      live=self.live):
            first = at if first is None else first
            if at - first > max_s:
                return
            yield frame, at - first

    def burst(self, frames: int, stride: int) -> list[RGBImage]:
        out: list[RGBImage] = []
        for frame in self._frames(stride):
            out.append(frame)
            if len(out) >= frames:
                break
        return out

    def _frames(self, stride: int) -> Iterator[RGBImage]:
        index = 0
        while True:
            # grab() skips decoding the frames the stride drops.
            if not self._capture.grab():
                return
            if index % stride == 0:
                ok, frame = self._capture.retrieve()
                if ok and frame is not None:
                    yield np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            index += 1

    def close(self) -> None:
        self._capture.release()


def fit_frames(frames: list[RGBImage], max_side_px: int) -> list[RGBImage]:
    """Frames larger than `max_side_px` are scaled down: a face at a bed fills a good part of the frame,
    and the engine's per-frame work on the whole image (grey, edges, crops) grows with its area."""
    return [fit_side(frame, max_side_px) for frame in frames]


def open_source(spec: str, engine_settings: EngineSettings) -> FrameSource:
    """A source from its spec: `0` (camera index), `rtsp://...`, `clip.mp4[#t=SECONDS]`, `folder/`."""
    spec = spec.strip()
    if spec.isdigit():
        return CaptureSource(int(spec), f"camera {spec}", live=True)
    if spec.lower().startswith(STREAM_SCHEMES):
        return CaptureSource(spec, "stream " + spec.split("@")[-1], live=True)  # never echo credentials in a URL
    path_part, _, fragment = spec.partition("#t=")
    path = Path(path_part).expanduser()
    if path.is_dir():
        return ImageFolderSource(path, engine_settings)
    if not path.is_file():
        raise SourceError(f"{spec}: no such camera, stream, video file or image folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return SingleImageSource(path, engine_settings)
    try:
        start_s = float(fragment) if fragment else 0.0
    except ValueError as e:
        raise SourceError(f"{spec}: '#t=' needs seconds, e.g. clip.mp4#t=3.5") from e
    return CaptureSource(str(path), f"video file {path.name}", start_s=start_s)


@dataclass
class SingleImageSource:
    path: Path
    engine_settings: EngineSettings

    @property
    def description(self) -> str:
        return f"image {self.path.name}"

    def burst(self, frames: int, stride: int) -> list[RGBImage]:
        try:
            return [load_image_file(self.path, self.engine_settings)]
        except BedcheckError as e:
            raise SourceError(f"{self.path}: {e}") from e

    def timed(self, fps: float, max_s: float) -> Iterator[tuple[RGBImage, float]]:
        yield self.burst(1, 1)[0], 0.0  # one image is one frame: never live

    def close(self) -> None:
        pass
