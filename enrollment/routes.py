"""Admission-desk enrollment: one photo per request for one insured person, through the same gates and 1:N check
as bulk. The desk takes two or three photos per person (`photos_wanted`; the answer says how many are enrolled
and, while fewer than two, asks for more and why): the bed check compares with their template.

Administrators and supervisors may enroll anyone (creating the person when a name is given). Hospital
staff may enroll only persons currently admitted to their own hospital; anyone else answers 404, as if
unknown, so the desk cannot probe which insurance numbers exist.
"""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session, col, select

from enrollment.analyse import analyse_photo
from enrollment.service import enroll_photo
from models.errors import InvalidInput, NotFound, PayloadTooLarge, all_error_classes
from models.faces.engine import FaceEngine
from models.names import clean_name
from server.accounts.deps import RequireRoles
from server.accounts.tables import Role, UserAccount
from server.admissions.tables import Admission
from server.db import Db
from server.persons.face_index import FaceIndex, load_or_rebuild
from server.persons.replacement import check_replacement
from server.persons.service import enrolled_vectors
from server.persons.tables import InsuredPerson

router = APIRouter(prefix="/api/enrollment", tags=["enrollment"])
DESK = RequireRoles(Role.ADMIN, Role.SUPERVISOR, Role.HOSPITAL_STAFF)
_ERRORS = {cls.code.value: cls for cls in all_error_classes()}
_STATE_LOCK = threading.Lock()
PHOTOS_WANTED = 3  # two at least; a third helps most where a patient's photos differ (glasses, light, age)
PHOTOS_NEEDED = 2
ADVICE = ("请再拍 {more} 张照片（正脸、换个时间或光线）：床旁核查用多张照片合成的模板比对，本人更少被误送人工复核。"
          " / Take {more} more photo(s) (frontal, at another moment or light): bed checks compare with a template "
          "of all the photos, so the patient is less often sent to review.")


class EnrollmentRead(BaseModel):
    insured_person_id: int
    insurance_number: str
    embedding_id: int | None
    already_enrolled: bool
    person_created: bool
    duplicate_flag_ids: list[int]
    replaced_flag_id: int | None = None
    face_pending: bool = False  # a hospital's replacement: the new face waits for the flag's confirmation
    name_cleaned: list[str] = []  # characters the name rule removed from the given name (models/names.py)
    # The person's active faces of the server's engine after this upload, and how many the desk should take:
    # a bed check compares with the template of them all (models/faces/templates.py), and two or three photos
    # taken apart recognise the patient far more often than one at the same strictness (docs/benchmarks.md).
    photos_enrolled: int = 0
    photos_wanted: int = PHOTOS_WANTED
    advice: str = ""


@router.post("/persons/{insurance_number}/photos", response_model=EnrollmentRead, status_code=201,
             responses={200: {"model": EnrollmentRead, "description": "This photo was already enrolled"}})
def upload_photo(insurance_number: str, request: Request, db: Db, user: Annotated[UserAccount, Depends(DESK)],
                 photo: Annotated[UploadFile, File(description="JPEG, PNG or WebP with exactly one face")],
                 name: Annotated[str, Form(max_length=120)] = "",
                 replace: Annotated[bool, Form(description="Deactivate earlier faces (kept as history); needs a "
                                                           "reason, is audited and raises a review flag; hospital "
                                                           "staff's waits for its confirmation")] = False,
                 reason: Annotated[str, Form(max_length=500, description="Why the face is replaced")] = "",
                 ) -> EnrollmentRead | JSONResponse:
    """Enroll one photo for an insured person; a face enrolled under another number raises a flag."""
    _check_person(db, user, insurance_number, name)
    # The name rule before the photo is analysed: a refused name is the caller's to fix first.
    removed = list(clean_name(name).removed) if name.strip() and user.role != Role.HOSPITAL_STAFF else []
    if replace:  # before the photo is analysed: a missing reason is the caller's to fix first
        check_replacement(db, person_id=_person_id(db, insurance_number), reason=reason,
                          staff_hospital_id=user.hospital_id if user.role == Role.HOSPITAL_STAFF else None)
    data = _read(photo, request.app.state.settings.max_body_bytes)
    engine_settings = request.app.state.engine_settings
    analysis = analyse_photo(data, FaceEngine(engine_settings))
    if not analysis.accepted:
        raise _ERRORS.get(analysis.code, InvalidInput)(analysis.message, **analysis.details)
    settings = request.app.state.settings
    index = _face_index(request, db)
    with index.lock:
        result = enroll_photo(
            db, index=index, insurance_number=insurance_number, name=name, photo=analysis, source="desk",
            actor=f"user:{user.id}", duplicate_threshold=engine_settings.duplicate_threshold, replace=replace,
            replace_reason=reason, staff_hospital_id=user.hospital_id if user.role == Role.HOSPITAL_STAFF else None,
            photo_bytes=data if settings.keep_full_photos else None, photo_dir=settings.enrollment_photo_dir)
    body = EnrollmentRead(insured_person_id=result.person_id, insurance_number=insurance_number,
                          embedding_id=result.embedding_id, already_enrolled=result.already_enrolled,
                          person_created=result.person_created, duplicate_flag_ids=result.flag_ids,
                          replaced_flag_id=result.replaced_flag_id, face_pending=result.face_pending,
                          name_cleaned=removed)
    enrolled = enrolled_vectors(db, [result.person_id], engine=engine_settings.engine_tag).get(result.person_id)
    body.photos_enrolled = len(enrolled) if enrolled is not None else 0
    if body.photos_enrolled < PHOTOS_NEEDED:
        body.advice = ADVICE.format(more=PHOTOS_NEEDED - body.photos_enrolled)
    return JSONResponse(body.model_dump(), status_code=200) if result.already_enrolled else body


def _person_id(db: Session, insurance_number: str) -> int | None:
    return db.exec(select(InsuredPerson.id).where(InsuredPerson.insurance_number == insurance_number)).first()


def _check_person(db: Session, user: UserAccount, insurance_number: str, name: str) -> None:
    person = db.exec(select(InsuredPerson).where(InsuredPerson.insurance_number == insurance_number)).first()
    if user.role == Role.HOSPITAL_STAFF:
        admitted = person is not None and db.exec(select(Admission.id).where(
            Admission.insured_person_id == person.id, Admission.hospital_id == user.hospital_id,
            col(Admission.discharged_at).is_(None))).first()
        if not admitted:
            raise NotFound("insured person not found among your hospital's current admissions")
    elif person is None and not name.strip():
        raise InvalidInput("a new insured person needs a name", field="name")
    if not insurance_number.strip() or len(insurance_number) > 40:
        raise InvalidInput("insurance_number must be 1 to 40 characters", field="insurance_number")


def _read(photo: UploadFile, max_bytes: int) -> bytes:
    data = photo.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLarge(max_bytes=max_bytes)
    return data


def _face_index(request: Request, db: Session) -> FaceIndex:
    """The app's index, loaded (or rebuilt) from its file on first use and kept in step with the DB."""
    state = request.app.state
    with _STATE_LOCK:
        index: FaceIndex | None = getattr(state, "face_index", None)
        if index is None:
            engine = state.engine_settings
            index, _ = load_or_rebuild(db, state.settings.face_index_path_for(engine.engine), engine=engine.engine_tag)
            state.face_index = index
    return index

