"""Face engine settings: every threshold and limit of models/faces, with bounds and a reason.

Read from the environment (prefix BEDCHECK_ENGINE_) and from the file `bedcheck faces calibrate` writes
(`engine.env` in the data dir, or BEDCHECK_ENGINE_ENV_FILE). Built by each process's entry point and passed
down; never read at import.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.faces.engines import EngineName, EngineProfile, profile, profile_for_tag

CALIBRATION_FILE_NAME = "engine.env"


def default_calibration_file() -> Path:
    """Where `faces calibrate` writes its threshold and where the engine reads it back."""
    explicit = os.environ.get("BEDCHECK_ENGINE_ENV_FILE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("BEDCHECK_DATA_DIR", "var")) / CALIBRATION_FILE_NAME


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BEDCHECK_ENGINE_", extra="forbid")

    # --- decoding limits -------------------------------------------------------------------------
    max_image_bytes: int = Field(
        default=15 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024,
        title="Largest accepted image file", description="Bytes; larger uploads are rejected unread.",
    )
    max_image_pixels: int = Field(
        default=40_000_000, ge=10_000, le=500_000_000,
        title="Largest accepted image area",
        description="Width x height, checked from the header before decoding (decompression bombs).",
    )

    # --- detection -------------------------------------------------------------------------------
    detect_max_side_px: int = Field(
        default=640, ge=160, le=4096,
        title="Detection frame size",
        description="Frames with a longer side are detected on a copy downscaled to this size; "
        "encoding still uses the full-resolution face.",
    )
    small_image_upsample_below_px: int = Field(
        default=700, ge=0, le=4096,
        title="Upsample small images",
        description="When the (downscaled) detection copy's longer side is below this, HOG runs with one "
        "upsample, so faces down to about 40 px in it are found.",
    )
    detect_fallback_cnn: bool = Field(
        default=True,
        title="CNN detector fallback",
        description="When HOG finds no face, retry with more upsampling and then dlib's CNN detector "
        "(slower, used only on the misses).",
    )
    cnn_max_side_px: int = Field(
        default=400, ge=100, le=2000,
        title="CNN fallback frame size", description="The CNN fallback runs on a copy at most this large.",
    )

    # --- quality gates ---------------------------------------------------------------------------
    min_face_px: int = Field(
        default=50, ge=20, le=1000,
        title="Smallest face", description="Shorter side of the face box, in original-image pixels.",
    )
    min_eye_distance_px: float = Field(
        default=26.0, ge=5.0, le=500.0,
        title="Smallest eye distance",
        description="Pixels between the eye centres; below it the face is too small to encode reliably.",
    )
    edge_margin_px: int = Field(
        default=2, ge=0, le=100,
        title="Edge margin",
        description="A face box this close to (or beyond) the image border is cut off by the edge.",
    )
    min_sharpness: float = Field(
        default=12.0, ge=0.0, le=10_000.0,
        title="Blur gate",
        description="Variance of the Laplacian of the face crop resized to 128 px; below is blurred.",
    )
    min_brightness: float = Field(
        default=40.0, ge=0.0, le=255.0, title="Dark gate", description="Mean grey level of the face crop.",
    )
    max_brightness: float = Field(
        default=225.0, ge=0.0, le=255.0, title="Over-exposure gate",
        description="Mean grey level of the face crop.",
    )
    max_yaw_ratio: float = Field(
        default=0.45, ge=0.0, le=1.0,
        title="Frontal gate",
        description="|nose offset from the eye midpoint| / eye distance; above is turned away.",
    )
    secondary_face_ratio: float = Field(
        default=0.65, ge=0.0, le=1.0,
        title="Background faces ignored at enrollment",
        description="A second face smaller than this fraction of the main face's height is a "
        "background face and does not make the photo multi-face.",
    )

    # --- engine, encoding and matching --------------------------------------------------------------
    engine: EngineName = Field(
        default=EngineName.SFACE,
        title="Face engine",
        description="Which engine detects and embeds faces: `sface` (YuNet + SFace, the default: it measures "
        "best on East-Asian faces, docs/benchmarks.md) or `dlib` (face_recognition). Liveness reads Face Mesh "
        "landmarks whichever engine embeds.",
    )
    sface_min_score: float = Field(
        default=0.7, gt=0.0, lt=1.0,
        title="YuNet detection score",
        description="Detections below this confidence are not faces (0.6 found a face in no_face_dogs.jpg).",
    )
    sface_sure_score: float = Field(
        default=0.9, gt=0.0, lt=1.0,
        title="YuNet score needing no second opinion",
        description="A YuNet face below the OpenCV Zoo's default confidence (0.9) counts only when dlib's HOG "
        "detector finds it too (a dog's head scored 0.86, a real face in a deep-funnelled LFW crop 0.89).",
    )
    sface_min_face_px: int = Field(
        default=60, ge=20, le=1000,
        title="Smallest face (YuNet box)",
        description="Shorter side of YuNet's face box; its box includes the forehead and is larger than HOG's "
        "for the same face, so dlib's 50 px is about 60 px here.",
    )
    num_jitters: int = Field(
        default=1, ge=1, le=20, title="Encoding jitters",
        description="dlib only: re-samplings averaged per encoding; each one costs a full encoding.",
    )
    sface_match_threshold: float | None = Field(
        default=None, gt=0.0, lt=2.0,
        title="SFace match threshold",
        description="Distance at or below which two SFace faces are the same person; unset = the calibrated "
        "default in models/faces/engines.py. Written by `bedcheck faces calibrate --engine sface`.",
    )
    dlib_match_threshold: float | None = Field(
        default=None, gt=0.0, lt=2.0,
        title="dlib match threshold",
        description="As sface_match_threshold, for dlib embeddings.",
    )
    burst_min_frames: int = Field(
        default=1, ge=1, le=30, title="Frames needed",
        description="A burst needs this many agreeing frames to produce a result; otherwise it abstains.",
    )
    clearly_other_ratio: float = Field(
        default=1.3, gt=1.0, le=3.0, title="Clearly someone else",
        description="A captured face farther than this many times the engine's match threshold from the billed "
        "person is impersonation whatever liveness said (server/checks/policy.py).",
    )
    # The normal model of impostor distances under-states their near tail about twofold: asked for 1 %, sface
    # named 1.2 % of never-enrolled strangers on a 543-person dev gallery (scripts/bench_naming.py). Asked for
    # 0.5 %: strangers named nobody 99.1 % (98.8-99.7 % over three splits), enrolled impostors named right
    # first 95.6 % (docs/benchmarks.md).
    naming_stranger_rate: float = Field(
        default=0.005, gt=0.0, lt=0.5,
        title="Chance of naming a stranger",
        description="1:N naming (impostor, cross-hospital face) is allowed under the distance at which a "
        "never-enrolled face would be named as someone at most this often, for the gallery's size.",
    )

    # --- liveness --------------------------------------------------------------------------------
    # Thresholds are on geometric quantities of the 68 landmarks (models/faces/liveness/geometry.py), each a
    # change from the patient's own neutral frames, so they hold whatever the face size or camera. Fitted on
    # Face Mesh landmarks (mesh.py) over the timed clips of video_liveness (docs/benchmarks.md, "Face Mesh
    # landmarks"): turn, look, mouth and 3-D thresholds kept; the blink depth lowered (mesh eyelids close less).
    liveness_fps: float = Field(
        default=30.0, ge=2.0, le=60.0, title="Frames judged per second",
        description="Video and camera sources are thinned to this rate for the challenge. A blink lasts "
        "100-300 ms: at 15 frames a second its deepest frame is often missed.",
    )
    liveness_detect_side_px: int = Field(
        default=320, ge=160, le=1280, title="Detection size while tracking",
        description="The face is detected on a copy this large (one upsample), then followed by its landmarks.",
    )
    liveness_redetect_s: float = Field(
        default=0.1, ge=0.0, le=1.0, title="Time between detections while tracking",
        description="Frames less than this after the last detection are not detected: their box is "
        "interpolated between the detections on either side (every third frame is detected at 30 frames a "
        "second, every frame at 10 or fewer). 0 = detect every frame.",
    )
    challenge_length: int = Field(
        default=2, ge=1, le=4, title="Actions per challenge",
        description="How many actions the server draws for each check task (one moves the head; from two on, one "
        "moves the face: a blink or an open mouth).",
    )
    challenge_action_timeout_s: float = Field(
        default=6.0, ge=0.0, le=60.0, title="Time per action",
        description="Each action must be done within this many seconds of the previous one (or of the "
        "prompt); 0 = no limit (judging a recorded clip).",
    )
    turn_yaw_deg: float = Field(
        default=18.0, ge=5.0, le=60.0, title="Head turn",
        description="Yaw change from the neutral pose (cv2.solvePnP on a generic 3-D face) that counts as a turn.",
    )
    look_pitch_deg: float = Field(
        default=12.0, ge=5.0, le=60.0, title="Look up / down",
        description="Pitch change from the neutral pose that counts as looking up or down.",
    )
    blink_closure: float = Field(
        default=0.25, gt=0.0, lt=1.0, title="Blink depth",
        description="Relative drop of the eye aspect ratio (corrected for tilt) below the open-eye level. "
        "On Face Mesh landmarks the README's 21 timed blinks drop it by 0.17-0.50 (dlib's: 0.24-0.87): 0.25 "
        "finds 18 of them (0.3 found 13), with 2 unlisted dips over 94 s of video.",
    )
    blink_max_s: float = Field(
        default=1.0, gt=0.0, le=5.0, title="Longest blink",
        description="Eyes closed longer than this are not a blink (asleep, or a photo with closed eyes).",
    )
    mouth_open_delta: float = Field(
        default=0.4, gt=0.0, lt=2.0, title="Mouth opening",
        description="Rise of the inner-lip mouth aspect ratio above its closed level (speech stays below).",
    )
    action_hold_s: float = Field(
        default=0.15, ge=0.0, le=3.0, title="Time an action is held",
        description="A head pose or an open mouth must hold this long (a frame or two can be noise or speech).",
    )
    wrong_action_hold_s: float = Field(
        default=0.8, ge=0.0, le=5.0, title="Time a wrong action is held",
        description="A head action other than the one asked for fails the challenge only when held this long "
        "inside the asked action's window: a patient settling turns a little, briefly; a deliberate wrong "
        "action (or a recording doing its own) is held.",
    )
    planar_min_pose_deg: float = Field(
        default=10.0, ge=2.0, le=60.0, title="Pose change for the 3-D test",
        description="Below this head-pose change the 3-D test has nothing to measure and says so.",
    )
    planar_depth_threshold: float = Field(
        default=0.45, gt=0.0, lt=2.0, title="3-D test threshold",
        description="Depth of the nose in front of the eye-and-mouth plane, from its homography residual "
        "(inter-ocular distances; about 0.6-1.0 for a head). At or below it the face moved as one plane: a "
        "photo or a screen.",
    )
    motion_window_s: float = Field(
        default=8.0, ge=1.0, le=120.0, title="Bed-camera window",
        description="Fixed bed cameras watch this long for the motion of a living (possibly sleeping) patient.",
    )
    motion_min_change: float = Field(
        default=0.02, gt=0.0, lt=1.0, title="Bed-camera motion",
        description="Non-rigid or non-planar landmark change (over the inter-ocular distance) a living "
        "patient shows within the window; a photo on the pillow stays below.",
    )
    passive_weight: float = Field(
        default=0.1, ge=0.0, le=0.5, title="Weight of the passive cues",
        description="Single-frame cues (border, moire, colour, flatness) only lower the score by this much; "
        "they never refuse a capture on their own.",
    )

    # --- evidence --------------------------------------------------------------------------------
    crop_margin: float = Field(
        default=0.35, ge=0.0, le=1.0, title="Evidence crop margin",
        description="Margin around the face box in the evidence crop, as a fraction of the box size.",
    )
    crop_max_side_px: int = Field(
        default=256, ge=64, le=1024, title="Evidence crop size", description="Longer side of the crop.",
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_match_threshold(cls, data: Any) -> Any:
        """A calibration file written before there were two engines holds `BEDCHECK_ENGINE_MATCH_THRESHOLD`,
        fitted to dlib (the only engine then): it is read as dlib's threshold, so such a site still starts."""
        if isinstance(data, dict):
            for key in ("bedcheck_engine_match_threshold", "match_threshold"):
                if key in data:
                    legacy = data.pop(key)
                    data.setdefault("dlib_match_threshold", legacy)
        return data

    # --- each engine's distances (models/faces/engines.py), with this site's calibration -------------
    def profile_of(self, engine: EngineName | str | None = None) -> EngineProfile:
        """The profile of `engine` (default: the one this process embeds with), calibrated match included."""
        found = profile(engine or self.engine)
        override = {EngineName.SFACE: self.sface_match_threshold,
                    EngineName.DLIB: self.dlib_match_threshold}.get(found.name)
        return dataclasses.replace(found, match=override) if override is not None else found

    def profile_for_tag(self, tag: str) -> EngineProfile:
        """The calibrated profile of the engine that made embeddings tagged `tag` (UnknownEngine otherwise)."""
        return self.profile_of(profile_for_tag(tag).name)

    @property
    def engine_tag(self) -> str:
        return self.profile_of().tag

    @property
    def match_threshold(self) -> float:
        return self.profile_of().match

    @property
    def duplicate_threshold(self) -> float:
        return self.profile_of().duplicate

    @property
    def burst_agreement(self) -> float:
        return self.profile_of().burst_agreement

    @classmethod
    def load(cls, env_file: Path | None = None, **overrides: Any) -> EngineSettings:
        """Settings from the environment plus the calibration file (the environment wins)."""
        path = env_file or default_calibration_file()
        if path.is_file():
            return cls(_env_file=path, **overrides)  # type: ignore[call-arg]
        return cls(**overrides)
