"""The server's own look at an uploaded face crop: the embedding that decides a face result's verdict.

A device's embedding is its word; a rooted tablet can send the billed person's enrolled embedding for an
empty bed. So a face result (face_captured or spoof) must carry its crop, the crop must look like what a
device makes (format, bytes, side length), and the server encodes the face in it itself. The device's
embedding is kept as evidence: the evidence check flags it when it lies far from the server's. The scene
frame (the place check) and the liveness key frames are evidence too, checked here in the same step: a
result whose evidence is unreadable is refused alone, before anything is written.

Synthetic crops (server/checks/synthetic.py) stand in for faces in the demo and the test suite only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from dataclasses import dataclass

import numpy as np

from models.errors import (
    BedcheckError,
    EvidenceMissing,
    ImageError,
    ImageTooLarge,
    InvalidInput,
    SceneFrameMissing,
    SessionMissing,
    UnknownEngine,
)
from models.faces.decode import check_image_header, decode_image
from models.faces.engine import FaceEngine
from models.faces.engines import SYNTHETIC, UNIT_LENGTH_TAGS, device_engine
from models.faces.liveness.actions import LivenessMethod
from models.faces.liveness.session import MIN_SESSION_FRAMES
from models.faces.match import Embeddings
from models.faces.templates import Frame, fuse_probe
from models.settings import EngineSettings
from models.verdicts import CaptureOutcome
from models.wire import ResultUpload
from server.checks.synthetic import read_synthetic_embedding
from server.places.service import decode_scene_b64

FACE_OUTCOMES = frozenset({CaptureOutcome.FACE_CAPTURED, CaptureOutcome.SPOOF})


@dataclass(frozen=True)
class CropLimits:
    """What a device's evidence crop can be: a face with some margin, not a photo."""

    max_bytes: int
    max_side_px: int


@dataclass(frozen=True)
class KeyFrameLimits:
    """What a liveness key frame can be: a small JPEG of the face doing the challenge."""

    max_bytes: int
    max_side_px: int


@dataclass(frozen=True)
class CheckedKeyFrame:
    """One uploaded key frame, decoded and checked; stored as it came (the evidence check re-judges it)."""

    position: int
    role: str
    time_s: float
    sha256: str
    jpeg: bytes


@dataclass(frozen=True)
class Evidence:
    crop: bytes | None
    vector: np.ndarray | None  # the server's encoding of the crop; None when it holds no face (or no crop)
    synthetic: bool = False
    scene: bytes | None = None  # the capture's scene key frame (faces blurred), for the place check
    key_frames: tuple[CheckedKeyFrame, ...] = ()  # liveness evidence, re-checked by server/evidence/liveness.py
    engine: str | None = None  # tag of the engine that made `vector` (models/faces/engines.py)
    session: dict[str, object] | None = None  # the capture session without its JPEGs (frames in `session_frames`)
    session_frames: tuple[CheckedKeyFrame, ...] = ()
    # The frames the server encoded for the fused probe: the crop first, then each key frame (its face, or why
    # it has none); models/faces/templates.fuse_probe keeps those that show the crop's face.
    frames: tuple[Frame, ...] = ()
    agreement: float = 0.0  # the engine's burst agreement: farther from the crop is someone else

    @property
    def probe(self) -> Embeddings | None:
        """The fused probe (the crop and the key frames that pass the gates and show its face), tagged with its
        engine, as the matching rule takes it; None without a face in the crop."""
        if self.vector is None or self.engine is None:
            return None
        if not self.frames:
            return Embeddings.of(self.engine, self.vector)
        fused = fuse_probe(self.frames, None, agreement=self.agreement, unit=self.engine in UNIT_LENGTH_TAGS)
        return Embeddings.of(self.engine, fused.vector if fused.vector is not None else self.vector)

    @property
    def sha256(self) -> str | None:
        """The crop's hash as the server computed it: what replayed-image checks compare, whatever the
        device sent (a device leaving `evidence_sha256` out must not dodge them)."""
        return hashlib.sha256(self.crop).hexdigest() if self.crop is not None else None


class CropEncoder:
    """Checks and encodes uploaded crops; one per server process (the face engine loads once)."""

    def __init__(self, engine_settings: EngineSettings, limits: CropLimits, *, accept_synthetic: bool,
                 scene_limits: EngineSettings, key_frame_limits: KeyFrameLimits) -> None:
        self.engine_settings, self.limits, self.accept_synthetic = engine_settings, limits, accept_synthetic
        self.scene_limits = scene_limits
        self.key_frame_limits = key_frame_limits
        # Key frames are checked like crops (base64, hash, format, truncation, bytes and pixels), within the
        # app's image limits and the tighter key-frame ones.
        self._key_frame_image_limits = engine_settings.model_copy(update={
            "max_image_bytes": min(key_frame_limits.max_bytes, engine_settings.max_image_bytes),
            "max_image_pixels": min(key_frame_limits.max_side_px ** 2, engine_settings.max_image_pixels)})
        self._engine: FaceEngine | None = None
        self._lock = threading.Lock()

    def evidence_for(self, upload: ResultUpload) -> Evidence | BedcheckError:
        """The checked crop, scene and key frames and the server's encoding of the crop, or the refusal of this
        one result."""
        face = upload.outcome in FACE_OUTCOMES
        if face and upload.face_crop_jpeg_b64 is None:
            return EvidenceMissing()
        # Where the face was captured is evidence like the face itself: a face result without its scene is
        # refused like one without its crop.
        if face and upload.scene_jpeg_b64 is None:
            return SceneFrameMissing()
        try:
            # Whatever key frames a result carries are checked, whatever its outcome: none is stored unchecked.
            key_frames = self._checked_key_frames(upload)
            session, session_frames = self._checked_session(upload)
        except (InvalidInput, ImageError) as e:
            return e
        # Liveness the server can re-judge is a sequence over the challenge: a live claim on stills (or on nothing)
        # is refused. A capture the device itself found not live is a spoof whatever it carries.
        live = upload.liveness is not None and upload.liveness.is_live
        method = upload.liveness.method if upload.liveness is not None else LivenessMethod.NONE
        if face and live and method in (LivenessMethod.CHALLENGE, LivenessMethod.MOTION) and (
                upload.session is None or len(upload.session.frames) < MIN_SESSION_FRAMES):
            return SessionMissing()
        try:
            if not face:
                return Evidence(None, None, key_frames=key_frames, session=session, session_frames=session_frames)
            crop = self._checked_crop(upload)
            scene = decode_scene_b64(upload.scene_jpeg_b64 or "", self.scene_limits)
            if upload.embedding is not None:  # compared with the server's encoding of that engine only
                device_engine(upload.engine_version, allow_synthetic=self.accept_synthetic)
        except (InvalidInput, ImageError, UnknownEngine) as e:
            return e
        if self.accept_synthetic:
            carried = read_synthetic_embedding(crop)
            if carried is not None:
                return Evidence(crop, carried, synthetic=True, scene=scene, key_frames=key_frames,
                                engine=SYNTHETIC.tag, session=session, session_frames=session_frames)
        try:
            vector = self.encode(crop)
        except ImageError as e:
            return e
        if vector is None:
            return Evidence(crop, None, scene=scene, key_frames=key_frames, session=session,
                            session_frames=session_frames)
        frames = (Frame("crop", vector), *self.encode_key_frames(key_frames))
        return Evidence(crop, vector, scene=scene, key_frames=key_frames, engine=self.engine_settings.engine_tag,
                        frames=frames, agreement=self.engine_settings.burst_agreement, session=session,
                        session_frames=session_frames)

    def encode(self, crop: bytes) -> np.ndarray | None:
        """The one place the server encodes a crop: the largest face, through the configured face engine.

        Without the detector's fallback chain (`thorough=False`): the device cut the crop around a face its own
        detector found, and the first pass finds it again (34 of 34 real crops of ../shared/faces, ~0.12-0.17 s
        each); the fallback (CNN) costs ~2.7 s per faceless crop, which a rooted device could send by the batch.
        A crop the first pass misses is decided unrecognised and flagged: a person looks at it.
        """
        image = decode_image(crop, self.engine_settings)
        with self._lock:  # one encoding at a time per process: the models are shared, the cores are few
            if self._engine is None:
                self._engine = FaceEngine(self.engine_settings)
            return self._engine.encode_largest(image, thorough=False)

    def encode_key_frames(self, key_frames: tuple[CheckedKeyFrame, ...]) -> list[Frame]:
        """Each key frame's largest face, when it passes the quality gates (a turned head, a blurred or dark
        frame, a face at the edge is left out: it would pull the probe away from the person), for the probe.

        The crop itself is used whenever its face is found: the device cut it around the face its own gates
        chose. Without the detector's fallback, as for the crop; about 0.1-0.2 s of CPU per frame with SFace.
        """
        frames = []
        for frame in key_frames:
            try:
                image = decode_image(frame.jpeg, self._key_frame_image_limits)
            except ImageError:
                frames.append(Frame(frame.role, None, "unreadable"))
                continue
            with self._lock:
                if self._engine is None:
                    self._engine = FaceEngine(self.engine_settings)
                face = self._engine.analyze(image, encode=False).largest
                if face is None:
                    frames.append(Frame(frame.role, None, "no_face"))
                elif not face.quality.passed:
                    frames.append(Frame(frame.role, None, "quality"))
                else:
                    frames.append(Frame(frame.role, self._engine.encode(image, face)))
        return frames

    def _checked_crop(self, upload: ResultUpload) -> bytes:
        try:
            crop = base64.b64decode(upload.face_crop_jpeg_b64 or "", validate=True)
        except (binascii.Error, ValueError) as e:
            raise InvalidInput("face_crop_jpeg_b64 is not valid base64") from e
        if upload.evidence_sha256 and hashlib.sha256(crop).hexdigest() != upload.evidence_sha256:
            raise InvalidInput("evidence_sha256 does not match the uploaded crop")
        if len(crop) > self.limits.max_bytes:
            raise ImageTooLarge(f"a face crop is at most {self.limits.max_bytes} bytes", size_bytes=len(crop),
                                max_bytes=self.limits.max_bytes)
        # Header only: a decompression bomb or a photo-sized image is refused before any pixel is decoded.
        _, width, height = check_image_header(crop, self.engine_settings)
        if max(width, height) > self.limits.max_side_px:
            raise ImageTooLarge(f"a face crop is at most {self.limits.max_side_px} px on its longer side",
                                width=width, height=height, max_side_px=self.limits.max_side_px)
        return crop

    def _checked_frame_jpeg(self, what: str, jpeg_b64: str, sha256: str) -> bytes:
        """A key or session frame's JPEG: valid base64, the hash it claims, a JPEG, within the size limit."""
        try:
            data = base64.b64decode(jpeg_b64, validate=True)
        except (binascii.Error, ValueError) as e:
            raise InvalidInput(f"{what} is not valid base64") from e
        if hashlib.sha256(data).hexdigest() != sha256:
            raise InvalidInput(f"{what}: sha256 does not match the uploaded image")
        image_format, width, height = check_image_header(data, self._key_frame_image_limits)
        if image_format != "JPEG":
            raise InvalidInput(f"{what} must be a JPEG, not {image_format}")
        max_side = self.key_frame_limits.max_side_px
        if max(width, height) > max_side:
            raise InvalidInput(f"{what} is {width}x{height}; the longer side may be at most {max_side} px")
        return data

    def _checked_key_frames(self, upload: ResultUpload) -> tuple[CheckedKeyFrame, ...]:
        return tuple(CheckedKeyFrame(position, frame.role, frame.time_s, frame.sha256,
                                     self._checked_frame_jpeg(f"key frame {position}", frame.jpeg_b64, frame.sha256))
                     for position, frame in enumerate(upload.key_frames))

    def _checked_session(self, upload: ResultUpload) -> tuple[dict[str, object] | None, tuple[CheckedKeyFrame, ...]]:
        """The session's frames checked like key frames (base64, hash, JPEG, size), and what is kept of the rest."""
        if upload.session is None:
            return None, ()
        frames = [CheckedKeyFrame(position, "session", frame.time_s, frame.sha256,
                                  self._checked_frame_jpeg(f"session frame {position}", frame.jpeg_b64, frame.sha256))
                  for position, frame in enumerate(upload.session.frames)]
        meta = upload.session.model_dump(mode="json")
        for frame_meta in meta["frames"]:
            del frame_meta["jpeg_b64"]
        return meta, tuple(frames)

def frame_distances(evidence: Evidence, enrolled: Embeddings | None) -> list[dict[str, object]]:
    """Each frame of the fused probe with its distance to the person's template: kept with the verdict as
    evidence (the flag page shows them). Empty when the crop held no face."""
    from models.faces.templates import template_of

    if evidence.vector is None or not evidence.frames:
        return []
    unit = evidence.engine in UNIT_LENGTH_TAGS
    template = template_of(enrolled.vectors, unit=unit) if enrolled is not None and len(enrolled) else None
    fused = fuse_probe(evidence.frames, template, agreement=evidence.agreement, unit=unit)
    return [{"role": f.role, "distance": None if f.distance is None else round(f.distance, 4), "used": f.used,
             "reason": f.reason} for f in fused.frames]
