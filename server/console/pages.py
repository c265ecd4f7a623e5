"""Console pages: sign-in, dashboard, launch, flag queue, flag detail, review and appeal."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response

from models.errors import InvalidCredential, InvalidInput
from models.verdicts import FlagKind, Verdict
from server.accounts import service as account_service
from server.accounts.deps import ANY_USER, SUPERVISORS, CurrentUser
from server.audit import service as audit
from server.campaigns import service as campaign_service
from server.console import actions, service
from server.console.web import PREFIX, PageRoute, end_session, redirect, render, start_session, verify_csrf
from server.db import Db
from server.flags import service as flag_service
from server.flags.tables import FlagStatus

public = APIRouter(prefix=PREFIX, route_class=PageRoute, include_in_schema=False)
router = APIRouter(prefix=PREFIX, route_class=PageRoute, include_in_schema=False, dependencies=[Depends(ANY_USER)])
Csrf = Depends(verify_csrf)


def _enum(kind: Any, value: str) -> Any:
    if not value:
        return None
    try:
        return kind(value)
    except ValueError as e:
        raise InvalidInput(f"unknown value {value!r}") from e


def _int(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise InvalidInput(f"not a number: {value!r}")
    return int(value)


def flag_filter(campaign_id: str = "", hospital_id: str = "", kind: str = "", status: str = "") -> service.FlagFilter:
    return service.FlagFilter(_int(campaign_id), _int(hospital_id), _enum(FlagKind, kind), _enum(FlagStatus, status))


Filters = Annotated[service.FlagFilter, Depends(flag_filter)]


def _safe_next(target: str) -> str:
    # Only our own pages: an open redirect would let a phishing link borrow our sign-in page.
    return target if target.startswith(PREFIX + "/") and not target.startswith("//") else f"{PREFIX}/dashboard"


@public.get("/sign-in", name="console_sign_in_form", response_class=HTMLResponse)
def sign_in_form(request: Request, next: str = "", expired: str = "") -> Response:
    return render(request, "sign_in.html", {"next": _safe_next(next), "error": "session_expired" if expired else ""})


@public.post("/sign-in", name="console_sign_in", dependencies=[Csrf])
def sign_in(request: Request, db: Db, username: Annotated[str, Form(max_length=80)],
            password: Annotated[str, Form(max_length=200)], next: Annotated[str, Form()] = "") -> Response:
    try:
        user = account_service.authenticate(db, username=username, password=password)
    except InvalidCredential:
        return render(request, "sign_in.html", {"next": _safe_next(next), "error": "wrong_password"}, status_code=401)
    audit.record(db, actor=f"user:{user.id}", action="user.signed_in", object_type="user", object_id=user.id or 0)
    db.commit()
    response = redirect(_safe_next(next))
    start_session(response, request, account_service.issue_token(user, request.app.state.settings.secret_key
                                                                  .get_secret_value()))
    return response


@router.post("/sign-out", dependencies=[Csrf])
def sign_out(request: Request, user: CurrentUser, db: Db) -> Response:
    account_service.sign_out(db, user)
    response = redirect(f"{PREFIX}/sign-in")
    end_session(response)
    return response


@router.get("", response_class=HTMLResponse)
def home(user: CurrentUser) -> Response:
    return redirect(f"{PREFIX}/dashboard")


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, user: CurrentUser, db: Db, campaign_id: str = "") -> Response:
    board = service.dashboard(db, user, campaign_id=_int(campaign_id))
    return render(request, "dashboard.html", {"board": board, "verdicts": [v.value for v in Verdict]}, user=user)


@router.get("/campaigns/{campaign_id}/progress")
def campaign_progress(campaign_id: int, user: CurrentUser, db: Db) -> JSONResponse:
    return JSONResponse(service.campaign_progress(db, user, campaign_id))


@router.get("/launch", response_class=HTMLResponse, dependencies=[Depends(SUPERVISORS)])
def launch_form(request: Request, user: CurrentUser, db: Db) -> Response:
    return render(request, "launch.html", {"counties": service.county_names(db),
                                           "hospitals": service.hospital_names(db, user)}, user=user)


@router.post("/launch", dependencies=[Depends(SUPERVISORS), Csrf])
def launch(request: Request, user: CurrentUser, db: Db, scope: Annotated[str, Form()] = "county",
           county: Annotated[str, Form()] = "", hospitals: Annotated[list[str] | None, Form()] = None,
           deadline_minutes: Annotated[int, Form(gt=0, le=7 * 24 * 60)] = 20) -> Response:
    by_county = scope == "county"
    if (by_county and not county) or (not by_county and not hospitals):
        raise InvalidInput("choose a county or at least one hospital")
    ids = campaign_service.resolve_scope(db, county=county if by_county else None,
                                         hospitals=None if by_county else hospitals)
    campaign = campaign_service.create_campaign(
        db, hospital_ids=ids, deadline_s=deadline_minutes * 60, actor=f"user:{user.id}",
        scope={"county": county} if by_county else {"hospitals": hospitals})
    return redirect(f"{PREFIX}/dashboard?campaign_id={campaign.id}")


@router.get("/flags", response_class=HTMLResponse)
def flag_queue(request: Request, user: CurrentUser, db: Db, filters: Filters,
               page: int = Query(default=1, ge=1, le=100_000)) -> Response:
    result = service.flag_page(db, user, filters, page=page)
    return render(request, "flags.html", {"result": result, "filters": filters, "query": filters.query(),
                                          "hospitals": service.hospital_names(db, user),
                                          "kinds": [k.value for k in FlagKind],
                                          "statuses": [s.value for s in FlagStatus]}, user=user)


@router.get("/flags/{flag_id}", response_class=HTMLResponse)
def flag_detail(request: Request, flag_id: int, user: CurrentUser, db: Db) -> Response:
    view = service.flag_view(db, user, flag_id)
    return render(request, "flag.html", {"view": view, "reasons": actions.REVIEW_REASONS,
                                         "first_level": view.flag.status == FlagStatus.OPEN}, user=user)


@router.post("/flags/{flag_id}/review", dependencies=[Csrf])
def review(request: Request, flag_id: int, user: CurrentUser, db: Db, to: Annotated[str, Form()],
           reason: Annotated[str, Form()], comment: Annotated[str, Form(max_length=400)] = "") -> Response:
    flag = flag_service.load_flag(db, user, flag_id)
    actions.review_flag(db, flag=flag, actor=user, to=_enum(FlagStatus, to), reason_code=reason, comment=comment)
    return redirect(f"{PREFIX}/flags/{flag_id}")


@router.post("/flags/{flag_id}/appeal", dependencies=[Csrf])
def appeal(request: Request, flag_id: int, user: CurrentUser, db: Db, statement: Annotated[str, Form()] = "",
           attachments: Annotated[list[UploadFile] | None, File()] = None) -> Response:
    # read(limit + 1): a file over the limit is refused without holding more of it than needed.
    uploads = [actions.Upload(f.filename or "", f.file.read(actions.MAX_ATTACHMENT_BYTES + 1))
               for f in attachments or []]
    flag = flag_service.load_flag(db, user, flag_id)
    actions.file_appeal(db, flag=flag, actor=user, statement=statement, uploads=uploads)
    return redirect(f"{PREFIX}/flags/{flag_id}")
