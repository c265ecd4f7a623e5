"""The verdict policy: every rule that decides a check task's verdict, and only here.

A verdict is decided at three moments, each by one function below:
- when the task is created (`initial_verdict`): exempt, or pending;
- when a device's answer arrives (`decide`): an ordered list of rules (`ANSWER_RULES`), the first rule
  that returns a `Decision` wins; the server decides with its own encoding of the uploaded crop
  (server/checks/evidence.py), the threshold of the engine that made that encoding (models/faces/engines.py)
  and the enrolled embeddings of that engine it holds; the device's embedding and distance are kept as
  evidence but never trusted;
- when the deadline passes without an answer (`at_deadline`).
And which verdict a flag is raised for: `flag_kind` (models/verdicts.py `VERDICT_FLAG`); and when a capture's
scene is not the bed's place (`place_mismatch`, decided by the evidence check after the verdict).

To add a verdict (on leave, liveness re-check, place mismatch): add it to models/verdicts.py, then a rule
here at the precedence it needs (a field on `Answer` or `TaskContext` carries what the rule reads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from models.faces.liveness.actions import LivenessMethod
from models.faces.match import Embeddings, person_distance
from models.verdicts import VERDICT_FLAG, CaptureOutcome, FlagKind, Verdict
from models.wire import ResultUpload


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    distance: float | None
    reason: str


@dataclass(frozen=True)
class Answer:
    """What the server knows when a device's result for a task arrives."""

    upload: ResultUpload
    enrolled: Embeddings | None  # active enrolled embeddings of the admitted person, of the probe's engine
    threshold: float | None  # that engine's match threshold (None: no face to judge)
    # The server's own encoding of the uploaded crop (server/checks/evidence.py), never the device's
    # embedding: None for a face result whose crop holds no face (and for answers without a face).
    probe: Embeddings | None = None
    # An approved leave registered before the task was issued covers the time of the check
    # (server/admissions/leave.py decides which leave counts).
    on_leave: bool = False
    # The liveness methods this task accepts from this device (`allowed_methods`); None: not judged here.
    methods: frozenset[LivenessMethod] | None = None
    # The distance past which the face is clearly someone else (the engine's threshold times
    # EngineSettings.clearly_other_ratio); None: not judged.
    clearly_other: float | None = None


@dataclass(frozen=True)
class TaskContext:
    """What is known about an admission when its task is created."""

    is_exempt: bool = False


def initial_verdict(context: TaskContext) -> Verdict:
    """An exemption recorded before the check closes the task at once (still auditable); else pending."""
    return Verdict.EXEMPT if context.is_exempt else Verdict.PENDING


def _empty_on_leave(answer: Answer) -> Decision | None:
    if answer.on_leave and answer.upload.outcome in (CaptureOutcome.BED_EMPTY, CaptureOutcome.NO_FACE):
        return Decision(Verdict.ON_LEAVE, None, "approved_leave")
    return None


def _bed_empty(answer: Answer) -> Decision | None:
    if answer.upload.outcome in (CaptureOutcome.BED_EMPTY, CaptureOutcome.NO_FACE):
        return Decision(Verdict.ABSENT, None, answer.upload.outcome.value)
    return None


def _clearly_someone_else(answer: Answer) -> Decision | None:
    # Not the billed person is fraud whether the face was live or a picture: a face far over the threshold is
    # impersonation even when liveness was not established or the patient could not take part, never softened
    # to a review of the face. (A live-looking match still has to pass every rule below.)
    liveness = answer.upload.liveness
    failed = answer.upload.outcome == CaptureOutcome.SPOOF or (
        liveness is not None and not liveness.is_live and liveness.method != LivenessMethod.CANNOT_TAKE_PART
        and "liveness_not_established" not in liveness.reasons)
    if failed:
        return None  # a failed liveness test is spoof, a fraud kind already (_not_live)
    distance = _distance(answer)
    if distance is not None and answer.clearly_other is not None and distance > answer.clearly_other:
        return Decision(Verdict.IMPERSONATED, distance, "clearly_not_the_person")
    return None


def _cannot_take_part(answer: Answer) -> Decision | None:
    # The nurse recorded why the patient cannot do the challenge (unconscious, infant, ...): the face was
    # captured and is matched, but without liveness it is never verified; a reviewer looks at it.
    liveness = answer.upload.liveness
    if liveness is not None and liveness.method == LivenessMethod.CANNOT_TAKE_PART:
        return Decision(Verdict.UNRECOGNISED, _distance(answer), "cannot_take_part")
    return None


def _liveness_not_established(answer: Answer) -> Decision | None:
    # A bed camera that saw no sign of life and nothing planar either: not an attack, not verified; review.
    liveness = answer.upload.liveness
    if liveness is not None and not liveness.is_live and "liveness_not_established" in liveness.reasons:
        return Decision(Verdict.UNRECOGNISED, _distance(answer), "liveness_not_established")
    return None


def allowed_methods(fixed_camera_bed_ids: list[int] | None, bed_id: int, *,
                    simulated: bool = False) -> frozenset[LivenessMethod]:
    """The liveness methods a task for `bed_id` accepts from a device registered as the fixed camera of the beds
    `fixed_camera_bed_ids` (empty: a tablet). A tablet answers the challenge; signs of life (`motion`) come only
    from the bed's own fixed camera, registered by a bureau user. `simulated` (demo and test servers) adds the
    simulated devices' declared method and the no-evidence one."""
    methods = {LivenessMethod.CHALLENGE, LivenessMethod.CANNOT_TAKE_PART}
    if fixed_camera_bed_ids and bed_id in fixed_camera_bed_ids:
        methods.add(LivenessMethod.MOTION)
    if simulated:
        methods |= {LivenessMethod.SIMULATED, LivenessMethod.NONE}
    return frozenset(methods)


def _method_not_allowed(answer: Answer) -> Decision | None:
    # The device chose a method the task does not allow (a tablet saying "bed camera"): its liveness is no proof;
    # a `liveness_mismatch` flag follows from the evidence check. Reviewed, never verified.
    liveness = answer.upload.liveness
    if (answer.methods is not None and liveness is not None and liveness.is_live
            and liveness.method in (LivenessMethod.CHALLENGE, LivenessMethod.MOTION)
            and liveness.method not in answer.methods):
        return Decision(Verdict.UNRECOGNISED, _distance(answer), "liveness_mismatch")
    return None


def _not_live(answer: Answer) -> Decision | None:
    upload = answer.upload
    if upload.outcome == CaptureOutcome.SPOOF or (upload.liveness is not None and not upload.liveness.is_live):
        return Decision(Verdict.SPOOF, None, "liveness_failed")
    return None


def _no_face_in_crop(answer: Answer) -> Decision | None:
    if answer.probe is None:
        return Decision(Verdict.UNRECOGNISED, None, "no_face_in_crop")
    return None


def _nobody_enrolled(answer: Answer) -> Decision | None:
    if answer.enrolled is None or len(answer.enrolled) == 0:
        return Decision(Verdict.UNRECOGNISED, None, "nobody_enrolled")
    return None


def _distance(answer: Answer) -> float | None:
    """The server's distance (its own encoding of the crop, never the device's embedding) when there is a face
    in the crop and an enrolment; kept as evidence for the reviewer."""
    if answer.probe is None or answer.enrolled is None or len(answer.enrolled) == 0:
        return None
    return person_distance(answer.enrolled, answer.probe)


def _face_match(answer: Answer) -> Decision:
    distance = _distance(answer)
    assert distance is not None  # after _no_face_in_crop and _nobody_enrolled
    if answer.threshold is not None and distance <= answer.threshold:
        return Decision(Verdict.VERIFIED, distance, "match")
    return Decision(Verdict.IMPERSONATED, distance, "no_match")


# In order of precedence; the last rule always decides.
ANSWER_RULES: list[Callable[[Answer], Decision | None]] = [
    _empty_on_leave, _bed_empty, _clearly_someone_else, _cannot_take_part, _method_not_allowed,
    _liveness_not_established, _not_live, _no_face_in_crop, _nobody_enrolled, _face_match]


def decide(upload: ResultUpload, enrolled: Embeddings | None, threshold: float | None, *,
           probe: Embeddings | None, on_leave: bool = False, clearly_other: float | None = None,
           methods: frozenset[LivenessMethod] | None = None) -> Decision:
    """verified | on_leave | absent | impersonated | spoof | unrecognised, from what the device saw at the bed.

    `probe` is the server's own encoding of the uploaded crop, never the device's embedding; `enrolled` holds
    the person's embeddings of the probe's engine only, `threshold` is that engine's.
    """
    answer = Answer(upload, enrolled, threshold, probe, on_leave, methods, clearly_other)
    for rule in ANSWER_RULES:
        decision = rule(answer)
        if decision is not None:
            return decision
    raise AssertionError("the last answer rule always decides")


def at_deadline(*, delivered: bool, on_leave: bool = False) -> Verdict:
    """A pending task past its deadline is overdue, delivered or not: nobody answered, which says nothing
    about the bed (a device that lost the network is not a patient gone home). The silence is flagged on
    its own (device_offline); a late answer still decides the verdict. Inside an approved leave: on_leave."""
    del delivered  # kept in the signature: whether the device had the task is evidence, not the verdict
    return Verdict.ON_LEAVE if on_leave else Verdict.OVERDUE


def after_naming(verdict: Verdict, *, named_someone_else: bool) -> Verdict:
    """The verdict once the 1:N search has looked at the face: an unrecognised face that the search names as
    another enrolled person or a staff member is impersonation (the naming is the evidence)."""
    return Verdict.IMPERSONATED if verdict == Verdict.UNRECOGNISED and named_someone_else else verdict


def place_mismatch(score: int, threshold: int) -> bool:
    """A scene whose best reference of the ward keeps fewer inliers than `threshold` (or that has no reference
    at all, score 0) is not shown to be at the bed: flagged `place_mismatch` for a reviewer. The verdict stays
    what the face decided: a live, matching face at home is the patient, and whether the bed was hung is the
    reviewer's call from the scene beside the reference; but it is never verified silently."""
    return score < threshold


def flag_kind(verdict: Verdict | None) -> FlagKind | None:
    """The flag a verdict raises, or None (verified, exempt, pending)."""
    return VERDICT_FLAG.get(verdict) if verdict is not None else None
