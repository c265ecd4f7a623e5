"""The console's page for pairing a ward tablet's browser: a one-time code, its link and its QR code.

The QR code holds the bedside app's address with the code, so the nurse opens it with the tablet's camera
and pairs in one tap; the short code is for typing when no camera can read it. Codes are single-use and
expire; a paired browser is a device like any other (listed and revoked with the devices).
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Annotated

import segno
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlmodel import col, select

from models.errors import InvalidInput, NotFound
from server.accounts.deps import SUPERVISORS, CurrentUser
from server.console.web import PREFIX, PageRoute, render, verify_csrf
from server.db import Db, utcnow
from server.devices import service as device_service
from server.hospitals.tables import Hospital, Ward

router = APIRouter(prefix=PREFIX, route_class=PageRoute, include_in_schema=False, dependencies=[Depends(SUPERVISORS)])
Csrf = Depends(verify_csrf)
EXPIRY_CHOICES_MIN = (30, 120, 24 * 60, 7 * 24 * 60)


def pairing_link(request: Request, code: str) -> str:
    return str(request.url_for("bedside_shell").include_query_params(code=code))


def qr_svg(text: str) -> Markup:
    """An inline SVG QR code (segno: pure Python, no image library); medium error correction for screens."""
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="svg", scale=5, border=2, xmldecl=False, svgns=True,
                                     svgclass="qr", title="配对二维码")
    return Markup(buffer.getvalue().decode("utf-8"))  # noqa: S704  (segno's own SVG, no user text inside but the link)


def _wards(db: Db) -> list[tuple[int, str]]:
    rows = db.exec(select(Ward.id, Ward.name, Hospital.name).join(Hospital, col(Hospital.id) == Ward.hospital_id)
                   .order_by(col(Hospital.name), col(Ward.code)))
    return [(int(w), f"{h} · {n}") for w, n, h in rows]


@router.get("/bedside-pairing", response_class=HTMLResponse)
def pairing_form(request: Request, user: CurrentUser, db: Db) -> Response:
    return render(request, "bedside_pairing.html", {"wards": _wards(db), "choices": EXPIRY_CHOICES_MIN,
                                                    "pairing": None, "chosen": None, "expiry": 120}, user=user)


@router.post("/bedside-pairing", response_class=HTMLResponse, dependencies=[Csrf])
def create_pairing(request: Request, user: CurrentUser, db: Db, ward_id: Annotated[str, Form()] = "",
                   expiry_minutes: Annotated[int, Form()] = 120) -> Response:
    wards = _wards(db)
    context = {"wards": wards, "choices": EXPIRY_CHOICES_MIN, "pairing": None, "expiry": expiry_minutes,
               "chosen": int(ward_id) if ward_id.isdigit() else None, "error": None}
    if expiry_minutes not in EXPIRY_CHOICES_MIN:
        raise InvalidInput("choose one of the offered expiry times", field="expiry_minutes")
    if context["chosen"] is None or context["chosen"] not in dict(wards):
        context["error"] = "请选择病区"
        return render(request, "bedside_pairing.html", context, user=user, status_code=422)
    try:
        code = device_service.create_pairing_code(db, ward_id=context["chosen"], ttl_s=expiry_minutes * 60,
                                                  actor=f"user:{user.id}")
    except NotFound:
        context["error"] = "该病区不存在"
        return render(request, "bedside_pairing.html", context, user=user, status_code=422)
    link = pairing_link(request, code)
    context["pairing"] = {"code": code, "link": link, "qr": qr_svg(link), "ward": dict(wards)[context["chosen"]],
                          "expires_at": utcnow() + timedelta(minutes=expiry_minutes)}
    return render(request, "bedside_pairing.html", context, user=user)
