"""One error shape for every failure: {"code", "message", "details"}; never a stack trace to a client."""

from __future__ import annotations

import logging
import math
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from models.errors import BedcheckError, ReasonCode
from models.wire.base import CLOCK_OUT_OF_RANGE

# Validation failures with a reason code of their own (pydantic error type -> code); the rest: invalid_input.
VALIDATION_CODES = {"finite_number": ReasonCode.NON_FINITE_NUMBER, CLOCK_OUT_OF_RANGE: ReasonCode.CLOCK_IMPLAUSIBLE}

log = logging.getLogger("bedcheck.server")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BedcheckError)
    async def _known(request: Request, exc: BedcheckError) -> JSONResponse:
        log.info("%s %s -> %s %s", request.method, request.url.path, exc.http_status, exc.code.value)
        retry_after = exc.details.get("retry_after_s")
        headers = {"Retry-After": str(math.ceil(retry_after))} if isinstance(retry_after, int | float) else None
        return JSONResponse(exc.to_dict(), status_code=exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Only locations and messages: echoing the input could echo an embedding or a photo.
        errors = exc.errors()
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                   for e in errors]
        code = next((VALIDATION_CODES[e["type"]] for e in errors if e.get("type") in VALIDATION_CODES),
                    ReasonCode.INVALID_INPUT)
        message = {ReasonCode.NON_FINITE_NUMBER: "The request holds NaN or an infinite number.",
                   ReasonCode.CLOCK_IMPLAUSIBLE: "The device clock is out of range; set the device's clock."}.get(
            code, "The request is not valid.")
        body = {"code": code.value, "message": message, "details": {"errors": details}}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: ReasonCode.NOT_FOUND, 405: ReasonCode.INVALID_INPUT, 408: ReasonCode.REQUEST_TIMEOUT,
                413: ReasonCode.PAYLOAD_TOO_LARGE}.get(
            exc.status_code, ReasonCode.INVALID_INPUT)
        return JSONResponse({"code": code.value, "message": str(exc.detail), "details": {}},
                            status_code=exc.status_code)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # An id or count beyond what the database column holds (found by fuzzing: 2**64 as a task id).
        return JSONResponse({"code": ReasonCode.INVALID_INPUT.value, "message": "A number is out of range.",
                             "details": {}}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = uuid.uuid4().hex[:12]
        log.error("unhandled error request_id=%s %s %s", request_id, request.method, request.url.path,
                  exc_info=exc)
        return JSONResponse({"code": "internal_error", "message": "Internal error; quote the request id.",
                             "details": {"request_id": request_id}}, status_code=500)
