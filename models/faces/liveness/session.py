"""One judge of a capture session: the device, the server's evidence check and `bedcheck faces liveness` call it.

A capture session is what the device filmed during the challenge: a short sequence of face regions (small
JPEGs) with their capture times and the face's box in the full frame, and the times at which each prompt was
shown. The judge finds the landmarks itself (through a `Landmarker`) and re-judges the whole challenge:

- a sequence, not stills: enough frames, no hole longer than `MAX_SESSION_GAP_S` (a cut cannot hide in it);
- continuity: the face moves plausibly from frame to frame (no jump of place or size: a spliced recording);
- the prompts: one per action, at the times the task drew (`actions.prompt_schedule`) when it is known;
- each action newly begun after its own prompt and done within its window (`challenge.judge_prompted`);
- the 3-D test on the moved frames, its texture witness on the regions put back where they were.

What the device reports about its own judgement decides nothing: the server calls this on what was uploaded.

    session = decode_session(upload.session, settings)
    judgement = judge_session(session, actions, landmarker, settings, schedule=prompt_schedule(nonce, 2))
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from models.errors import InvalidInput
from models.faces import crop_to_jpeg
from models.faces.decode import RGBImage, decode_image, fit_side
from models.faces.detect import Box
from models.faces.liveness.actions import (
    HEAD_ACTIONS,
    PROMPT_TOLERANCE_S,
    RESPONSE_WINDOW_S,
    Action,
    LivenessMethod,
)
from models.faces.liveness.challenge import (
    ActionResult,
    judge_prompted,
    judge_sequence,
    measure_track,
    neutral_frame,
)
from models.faces.liveness.geometry import Points, inter_ocular
from models.faces.liveness.judge import check_motion
from models.faces.liveness.passive import LivenessResult
from models.faces.liveness.planarity import Planarity, PlanarityResult, judge_planarity
from models.faces.liveness.track import FaceTrack, Landmarker, TrackedFrame
from models.settings import EngineSettings
from models.wire.results import MAX_SESSION_FRAMES, MAX_SESSION_GAP_S, CaptureSession, FaceBox, SessionFrame

# A sequence, not a handful of stills: at the device's few frames a second a challenge is dozens of frames.
MIN_SESSION_FRAMES = 8
# Frames whose landmarks must be found, as a share of the session: a face that is there at least half the time
# (a bed camera's patient turns away; a tablet's patient turns far).
MIN_TRACKED_SHARE = 0.5
# The face may move this many face widths per second between frames (an expressive head turning fast moved its
# landmarks 0.8 face widths in 0.2 s in d12 of the clips; a camera cut jumped 2.5), plus a fixed allowance for
# the landmarks' own jitter; its size may change by this factor between frames (HOG's pyramid steps are 1.2).
_MAX_SPEED = 4.0
_JITTER = 0.3
_MAX_SIZE_STEP = 1.45
# What the device uploads: the face region (the box and this much of its size round it), scaled down to this
# side, at this JPEG quality; every `1 / BASE_FPS` seconds, and every frame near an action.
REGION_MARGIN = 0.3
REGION_SIDE_PX = 160
REGION_QUALITY = 75
BASE_FPS = 5.0
DENSE_S = 0.35
DENSE_FPS = 15.0


@dataclass(frozen=True)
class SessionImage:
    """One decoded frame of a session."""

    time_s: float
    image: RGBImage  # the face region
    region: Box      # where the region lies in the full frame
    box: Box         # the face in the full frame


@dataclass(frozen=True)
class Session:
    frames: Sequence[SessionImage]
    frame_size: tuple[int, int]  # (width, height) of the full frame
    prompts_s: Sequence[float]
    crop_frame: int = 0


@dataclass(frozen=True)
class SessionJudgement:
    is_live: bool
    reasons: tuple[str, ...]
    method: LivenessMethod
    actions: tuple[ActionResult, ...]
    planarity: PlanarityResult | None
    neutral_frame: int | None           # session index of the neutral face
    identity_frames: tuple[int, ...]    # session indices whose face must be the crop's person (neutral, actions)
    track: FaceTrack
    motion: float | None = None

    def as_result(self, passive_score: float = 1.0, cues: dict[str, float] | None = None) -> LivenessResult:
        """The judgement in the form the device's report is made from (models/faces/liveness/report.py)."""
        done = sum(r.passed for r in self.actions) / max(len(self.actions), 1)
        solid = {Planarity.SOLID: 1.0, Planarity.NOT_MEASURED: 0.5, Planarity.PLANAR: 0.0}[
            self.planarity.verdict if self.planarity else Planarity.NOT_MEASURED]
        score = round(min(1.0, 0.7 * done + 0.3 * solid) if self.is_live else min(0.49, 0.7 * done + 0.3 * solid), 3)
        key_frames = tuple((("neutral", self.neutral_frame),) if self.neutral_frame is not None else ()) + tuple(
            (r.action.value, r.frame_index) for r in self.actions if r.passed and r.frame_index is not None)
        return LivenessResult(self.is_live, score, any(r.passed and r.action == Action.BLINK for r in self.actions),
                              round(passive_score, 3), self.reasons, cues or {}, self.method.value, self.actions,
                              self.planarity, key_frames, self.motion)


def judge_session(session: Session, actions: Sequence[Action], landmarker: Landmarker, settings: EngineSettings, *,
                  method: LivenessMethod = LivenessMethod.CHALLENGE, schedule: Sequence[float] | None = None,
                  window_s: float = RESPONSE_WINDOW_S) -> SessionJudgement:
    """The whole challenge re-judged on the session's frames.

    `schedule` is the task's drawn prompt times (None: not known, as for a clip judged offline; the prompts the
    session reports are then taken as they are). `method` is the one the task allows: `motion` only for a
    device registered as the bed's fixed camera (decided by the caller).
    """
    reasons: list[str] = []
    frames = list(session.frames)
    identity: tuple[int, ...]
    if len(frames) <= 1:
        reasons.append("single_frame")
    if len(frames) < MIN_SESSION_FRAMES:
        reasons.append("not_a_sequence")
    times = [f.time_s for f in frames]
    if any(b - a > MAX_SESSION_GAP_S for a, b in zip(times, times[1:], strict=False)):
        reasons.append("session_gap")
    track = session_track(session, landmarker)
    if len(track.tracked) < max(MIN_SESSION_FRAMES, MIN_TRACKED_SHARE * len(frames)):
        reasons.append("face_not_followed")
    if _cut(track):
        reasons.append("session_cut")
    if method == LivenessMethod.MOTION:
        motion = check_motion(track, settings)
        reasons += [r for r in motion.reasons if r not in reasons]
        neutral = motion.key_frames[0][1] if motion.key_frames else None
        identity = tuple(sorted({i for _, i in motion.key_frames} | {session.crop_frame}))
        return SessionJudgement(not reasons, tuple(reasons), method, (), motion.planarity, neutral, identity, track,
                                motion.motion)
    if not actions:
        reasons.append("no_challenge")
    prompts = list(session.prompts_s)
    measures = measure_track(track)
    if not prompts and schedule is None:
        # A clip judged offline without prompt times (`bedcheck faces liveness` without --prompts): the prompts
        # are taken to be at its start, each action after the previous within `challenge_action_timeout_s`.
        results = judge_sequence(measures, actions, settings)
        reasons += [f"wrong_action:{r.wrong_action.value}" for r in results if r.wrong_action is not None]
        reasons += [f"not_done:{r.action.value}" for r in results if not r.passed]
        first_prompt = None
    else:
        if len(prompts) != len(actions):
            reasons.append("prompts_missing")
            prompts = (prompts + [prompts[-1] if prompts else 0.0] * len(actions))[:len(actions)]
        elif schedule is not None and any(abs(p - s) > PROMPT_TOLERANCE_S
                                          for p, s in zip(prompts, schedule, strict=False)):
            reasons.append("prompts_off_schedule")
        results, failed = judge_prompted(measures, actions, prompts, settings, window_s)
        reasons += failed
        first_prompt = prompts[0] if prompts else None
    reference = neutral_frame(measures, settings, first_prompt)
    points = {f.index: f.points for f in track.tracked}
    planarity = (judge_planarity(points, measures, reference, settings, track.images) if reference is not None
                 else PlanarityResult(Planarity.NOT_MEASURED, None, None, 0.0, 0, settings.planar_depth_threshold))
    if planarity.verdict == Planarity.PLANAR:
        reasons.append("planar_motion")
    elif any(a in HEAD_ACTIONS for a in actions) and planarity.verdict != Planarity.SOLID:
        reasons.append("no_3d_motion")
    wanted = {session.crop_frame} | ({reference} if reference is not None else set()) | {
        r.frame_index for r in results if r.passed and r.frame_index is not None}
    return SessionJudgement(not reasons, tuple(reasons), method, tuple(results), planarity, reference,
                            tuple(sorted(wanted)), track)


def identity_indices(judgement: SessionJudgement, frame_count: int) -> list[int]:
    """The frames whose face must be the crop's person: the neutral one, each action's, the crop's, and two spread
    over the session (a face that changes between the actions is seen too)."""
    spread = {round(frame_count / 3), round(2 * frame_count / 3)} if frame_count >= 3 else set()
    return sorted((set(judgement.identity_frames) | spread) & set(range(frame_count)))


def session_track(session: Session, landmarker: Landmarker) -> FaceTrack:
    """Landmarks of every frame, found in its region from the device's box, in full-frame coordinates.

    The regions are put back where they were in blank full frames (`images`), so the texture witness of the
    3-D test follows the face across frames as it would on the full frames.
    """
    width, height = session.frame_size
    track = FaceTrack(len(session.frames), (width, height), images=[])
    assert track.images is not None
    for index, frame in enumerate(session.frames):
        scale = frame.image.shape[1] / max(frame.region.width, 1)
        local = Box(int(round((frame.box.top - frame.region.top) * scale)),
                    int(round((frame.box.right - frame.region.left) * scale)),
                    int(round((frame.box.bottom - frame.region.top) * scale)),
                    int(round((frame.box.left - frame.region.left) * scale)))
        found = landmarker.landmarks(frame.image, local) if local.width > 4 and local.height > 4 else None
        track.images.append(_put_back(frame, (width, height)))
        if found is None:
            continue
        points: Points = found / scale + np.array([frame.region.left, frame.region.top], dtype=np.float64)
        unit = inter_ocular(points)
        if not 0.2 * frame.box.width < unit < 0.8 * frame.box.width:
            continue  # landmarks lost on something that is not the box's face
        track.tracked.append(TrackedFrame(index, frame.time_s, points, frame.box, True))
    return track


def _put_back(frame: SessionImage, size: tuple[int, int]) -> RGBImage:
    width, height = size
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    r = frame.region
    if r.width > 0 and r.height > 0:
        canvas[r.top:r.bottom, r.left:r.right] = cv2.resize(frame.image, (r.width, r.height),
                                                             interpolation=cv2.INTER_LINEAR)
    return canvas


def _cut(track: FaceTrack) -> bool:
    """Whether the face jumps between two followed frames: its place or size changes more than a head can."""
    for before, after in zip(track.tracked, track.tracked[1:], strict=False):
        size = max(inter_ocular(before.points), 1.0) * 2.5  # about the face's width
        dt = max(after.time_s - before.time_s, 0.0)
        moved = float(np.linalg.norm(after.points.mean(axis=0) - before.points.mean(axis=0)))
        grown = max(inter_ocular(after.points), 1.0) / max(inter_ocular(before.points), 1.0)
        if moved > size * (_JITTER + _MAX_SPEED * dt) or not 1 / _MAX_SIZE_STEP <= grown <= _MAX_SIZE_STEP:
            return True
    return False


# --- the wire form -----------------------------------------------------------------------------------------
def _box(wire: FaceBox) -> Box:
    return Box(wire.top, wire.right, wire.bottom, wire.left)


def _wire_box(box: Box) -> FaceBox:
    return FaceBox(left=box.left, top=box.top, right=box.right, bottom=box.bottom)


def decode_session(wire: CaptureSession, settings: EngineSettings) -> Session:
    """The uploaded session's frames decoded; raises InvalidInput (or an ImageError) naming the bad frame."""
    frames = []
    for index, frame in enumerate(wire.frames):
        try:
            data = base64.b64decode(frame.jpeg_b64, validate=True)
        except (binascii.Error, ValueError) as e:
            raise InvalidInput(f"session frame {index} is not valid base64") from e
        if hashlib.sha256(data).hexdigest() != frame.sha256:
            raise InvalidInput(f"session frame {index}: sha256 does not match the uploaded image")
        image = decode_image(data, settings)
        frames.append(SessionImage(frame.time_s, image, _box(frame.region), _box(frame.box)))
    return Session(frames, (wire.frame_width, wire.frame_height), list(wire.prompts_s), wire.crop_frame)


def frame_jpegs(wire: CaptureSession) -> list[bytes]:
    """The session's frames as the JPEG bytes that were uploaded (for hashing and storage)."""
    return [base64.b64decode(f.jpeg_b64) for f in wire.frames]


def region_of(box: Box, size: tuple[int, int], margin: float = REGION_MARGIN) -> Box:
    """The face region cut for the session: the box and `margin` of its size round it, inside the frame."""
    width, height = size
    pad_x, pad_y = int(box.width * margin), int(box.height * margin)
    return Box(max(0, box.top - pad_y), min(width, box.right + pad_x), min(height, box.bottom + pad_y),
               max(0, box.left - pad_x))


def pick_frames(times_s: Sequence[float], dense_at_s: Sequence[float]) -> list[int]:
    """Which of the burst's frames go into the session: one every 1/BASE_FPS s, and up to DENSE_FPS within
    DENSE_S of each moment in `dense_at_s` (the actions the device saw: a blink lasts a few frames)."""
    picked: list[int] = []
    last = -1e9
    for index, t in enumerate(times_s):
        dense = any(abs(t - at) <= DENSE_S for at in dense_at_s)
        step = 1.0 / (DENSE_FPS if dense else BASE_FPS)
        if t - last >= step - 1e-3:
            picked.append(index)
            last = t
    return picked


def build_session(frames: Sequence[RGBImage], times_s: Sequence[float], boxes: Sequence[Box | None],
                  prompts_s: Sequence[float], *, dense_at_s: Sequence[float] = (),
                  crop_time_s: float | None = None, scene_time_s: float | None = None) -> tuple[CaptureSession,
                                                                                               Session]:
    """The session a device uploads from its burst (frames with a face only), and the same session decoded
    from those very JPEGs, which the device judges so that its judgement is the server's.

    Times are made relative to the first frame kept; prompts likewise.
    """
    height, width = frames[0].shape[:2]
    found = [i for i, b in enumerate(boxes) if b is not None]
    if not found:
        raise ValueError("no frame of the burst has a face")
    # A frame where the device lost the face still goes in, cut where the face was last seen: the session shows
    # the time as it passed (a hole would read as a cut), and the judge decides what it sees there.
    filled = [boxes[i] if boxes[i] is not None else boxes[min(found, key=lambda k: abs(k - i))]
              for i in range(len(boxes))]
    kept = [i for i in pick_frames(times_s, dense_at_s) if found[0] <= i <= found[-1]]
    if len(kept) > MAX_SESSION_FRAMES:
        raise ValueError(f"{len(kept)} frames: longer than a capture session ({MAX_SESSION_FRAMES} frames at most)")
    start = times_s[kept[0]]
    wire_frames, decoded = [], []
    for i in kept:
        box = filled[i]
        assert box is not None
        region = region_of(box, (width, height))
        cut = fit_side(np.ascontiguousarray(frames[i][region.top:region.bottom, region.left:region.right]),
                       REGION_SIDE_PX)
        jpeg = crop_to_jpeg(cut, quality=REGION_QUALITY)
        at = round(times_s[i] - start, 3)
        wire_frames.append(SessionFrame(time_s=at, region=_wire_box(region), box=_wire_box(box),
                                        jpeg_b64=base64.b64encode(jpeg).decode("ascii"),
                                        sha256=hashlib.sha256(jpeg).hexdigest()))
        decoded.append(SessionImage(at, _decode_jpeg(jpeg), region, box))
    span = (decoded[0].time_s, decoded[-1].time_s)
    crop_at = (crop_time_s - start) if crop_time_s is not None else span[0]
    crop_frame = min(range(len(decoded)), key=lambda k: abs(decoded[k].time_s - crop_at))
    scene_at = min(max((scene_time_s - start) if scene_time_s is not None else span[0], span[0]), span[1])
    prompts = [round(max(0.0, p - start), 3) for p in prompts_s]
    wire = CaptureSession(frame_width=width, frame_height=height, frames=wire_frames, prompts_s=prompts,
                          crop_frame=crop_frame, scene_time_s=round(scene_at, 3))
    return wire, Session(decoded, (width, height), prompts, crop_frame)


def _decode_jpeg(jpeg: bytes) -> RGBImage:
    """The device's own JPEG decoded, to judge exactly what it uploads (no limits: it made the bytes)."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))  # type: ignore[arg-type]


def capture_session(frames: Sequence[RGBImage], times_s: Sequence[float], track: FaceTrack,
                    actions: Sequence[Action], prompts_s: Sequence[float], settings: EngineSettings, *,
                    crop_index: int = 0, scene_index: int | None = None) -> tuple[CaptureSession, Session]:
    """The device's session of a burst it tracked: frames with a face, denser round the actions its full-rate
    track shows (judged against the prompts it showed); the wire form and the same session decoded."""
    boxes: list[Box | None] = [None] * len(frames)
    for tracked in track.tracked:
        boxes[tracked.index] = tracked.box
    dense: list[float] = []
    if actions:
        measures = measure_track(track)
        found = (judge_prompted(measures, actions, prompts_s, settings, RESPONSE_WINDOW_S)[0] if prompts_s
                 else judge_sequence(measures, actions, settings))
        at = {f.index: f.time_s for f in track.tracked}
        dense = [at[r.frame_index] for r in found if r.frame_index is not None and r.frame_index in at]
    scene = scene_index if scene_index is not None else len(frames) // 2
    return build_session(frames, times_s, boxes, prompts_s, dense_at_s=dense, crop_time_s=times_s[crop_index],
                         scene_time_s=times_s[scene])


def box_at(session: Session, time_s: float) -> Box:
    """The face's box at `time_s`, interpolated between the session's frames (where the scene's blur belongs)."""
    frames = session.frames
    after = next((k for k, f in enumerate(frames) if f.time_s >= time_s), len(frames) - 1)
    before = max(after - 1, 0)
    a, b = frames[before], frames[after]
    if after == before or b.time_s == a.time_s:
        return b.box
    w = (time_s - a.time_s) / (b.time_s - a.time_s)

    def mix(x: int, y: int) -> int:
        return int(round(x + (y - x) * w))

    return Box(mix(a.box.top, b.box.top), mix(a.box.right, b.box.right), mix(a.box.bottom, b.box.bottom),
               mix(a.box.left, b.box.left))


__all__ = ["Session", "SessionImage", "SessionJudgement", "build_session", "capture_session", "decode_session",
           "identity_indices", "judge_session",
           "pick_frames", "region_of", "box_at", "frame_jpegs"]
