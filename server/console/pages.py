"""Console pages: sign-in, dashboard, launch, flag queue, flag detail, review and appeal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response

from models.errors import InvalidCredential, InvalidInput, PayloadTooLarge, SignInThrottled
from models.verdicts import FlagKind, Verdict
from server.accounts import service as account_service
from server.accounts import throttle
from server.accounts.deps import ANY_USER, SUPERVISORS, CurrentUser, client_address
from server.accounts.tables import Role, UserAccount
from server.audit import service as audit
from server.campaigns import service as campaign_service
from server.console import actions, details, inbox, people, queue, references, service, todo
from server.console.web import (
    PREFIX,
    PageRoute,
    end_session,
    formatter,
    redirect,
    render,
    start_session,
    verify_csrf,
)
from server.db import Db
from server.flags import appeals, workflow
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
        raise InvalidInput(f"unknown value {value!r}", text_key="err_unknown_value") from e


def _int(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise InvalidInput(f"not a number: {value!r}", text_key="err_not_a_number")
    return int(value)


def _status(value: str) -> str | None:
    if value in ("", "all"):
        return None
    if value == queue.ACTIONABLE_KEY or value == inbox.MINE_KEY:
        return value
    head, _, only = value.partition(":")
    if head == inbox.MINE_KEY:
        return f"{inbox.MINE_KEY}:{_enum(FlagStatus, only).value}"
    return str(_enum(FlagStatus, value).value)


def parse_filter(params: Mapping[str, str]) -> service.FlagFilter:
    """The queue's filters from query parameters; with none at all, the default view of what needs doing."""
    if not any(k in params for k in QUEUE_PARAMS):
        return queue.default_filter()
    sort = params.get("sort", "priority")
    return service.FlagFilter(_int(params.get("campaign_id", "")), _int(params.get("hospital_id", "")),
                              _enum(FlagKind, params.get("kind", "")), _status(params.get("status", "")),
                              _int(params.get("ward_id", "")), params.get("q", "").strip()[:80] or None,
                              sort if sort in queue.SORTS else "priority",
                              _int(params.get("per_page", "")) or queue.DEFAULT_PAGE_SIZE)


def flag_filter(request: Request) -> service.FlagFilter:
    return parse_filter(request.query_params)


def export_filter(request: Request) -> service.FlagFilter:
    """An export is a document, not the day's work: without filters it lists every flag in scope (the queue's
    export links carry the queue's own filters)."""
    if not any(k in request.query_params for k in QUEUE_PARAMS):
        return service.FlagFilter()
    return parse_filter(request.query_params)


# The per-hospital columns of a running check: what a supervisor acts on first.
HOSPITAL_COLUMNS = ("verified", "absent", "impersonated", "spoof", "overdue")
QUEUE_PARAMS = ("campaign_id", "hospital_id", "kind", "status", "ward_id", "q", "sort", "per_page")
QUEUE_COOKIE = "bedcheck_queue"
Filters = Annotated[service.FlagFilter, Depends(flag_filter)]
ExportFilters = Annotated[service.FlagFilter, Depends(export_filter)]


HOME = f"{PREFIX}/todo"  # every role starts on 我的待办


def _safe_next(target: str) -> str:
    # Only our own pages: an open redirect would let a phishing link borrow our sign-in page.
    return target if target.startswith(PREFIX + "/") and not target.startswith("//") else HOME


@public.get("/sign-in", name="console_sign_in_form", response_class=HTMLResponse)
def sign_in_form(request: Request, next: str = "", expired: str = "") -> Response:
    return render(request, "sign_in.html", {"next": _safe_next(next), "error": "session_expired" if expired else ""})


@public.post("/sign-in", name="console_sign_in", dependencies=[Csrf])
def sign_in(request: Request, db: Db, username: Annotated[str, Form(max_length=80)],
            password: Annotated[str, Form(max_length=200)], next: Annotated[str, Form()] = "") -> Response:
    try:
        user = throttle.sign_in(db, username=username, password=password, address=client_address(request),
                                policy=request.app.state.sign_in_policy, refusals=request.app.state.sign_in_refusals)
    except SignInThrottled as e:
        wait_s = int(e.details["retry_after_s"])
        fmt = formatter(request)
        text = fmt.t("sign_in_locked" if e.details.get("locked") else "sign_in_throttled").format(
            wait=fmt.wait(wait_s))
        response = render(request, "sign_in.html", {"next": _safe_next(next), "error": "sign_in_throttled",
                                                    "error_text": text}, status_code=429)
        response.headers["Retry-After"] = str(wait_s)
        return response
    except InvalidCredential:
        return render(request, "sign_in.html", {"next": _safe_next(next), "error": "wrong_password",
                                                "username": username}, status_code=401)
    audit.record(db, actor=f"user:{user.id}", action="user.signed_in", object_type="user", object_id=user.id or 0)
    db.commit()
    response = redirect(_safe_next(next))
    start_session(response, request, account_service.issue_token(user, request.app.state.settings.secret))
    return response


@router.post("/sign-out", dependencies=[Csrf])
def sign_out(request: Request, user: CurrentUser, db: Db) -> Response:
    account_service.sign_out(db, user)
    response = redirect(f"{PREFIX}/sign-in")
    end_session(response)
    return response


@router.get("", response_class=HTMLResponse)
def home(user: CurrentUser) -> Response:
    return redirect(HOME)


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, user: CurrentUser, db: Db, campaign_id: str = "") -> Response:
    board = service.dashboard(db, user, campaign_id=_int(campaign_id))
    t = formatter(request).t
    labels = {**{s: t(s) for s in ("running", "completed")}, "ended_at_deadline": t("ended_at_deadline"),
              "timed_out_summary": t("timed_out_summary"), "seconds_to_complete": t("seconds_to_complete"),
              "not_fetched_n": t("not_fetched_n"), "deadline_passed": t("deadline_passed"),
              "hospitals": board.hospitals}
    return render(request, "dashboard.html", {"board": board, "verdicts": [v.value for v in Verdict],
                                              "hospital_columns": HOSPITAL_COLUMNS, "labels": labels,
                                              "setup": references.setup_summary(db, user)}, user=user)


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
           deadline_minutes: Annotated[int, Form(gt=0, le=7 * 24 * 60)] = 20,
           confirm_beds: Annotated[str, Form()] = "") -> Response:
    """Two steps: the choice is shown back with its number of beds; only the confirmed choice launches."""
    # Hospitals picked in the list are the choice, whatever the radio says: launching the whole county
    # because a radio button was not switched is the mistake this form must not make.
    chosen = [h for h in hospitals or [] if h]
    by_county = not chosen and scope == "county"
    if not chosen and not (by_county and county):
        # Shown on the form, beside the choice, with what was typed kept (not on a separate error page).
        return render(request, "launch.html", {
            "counties": service.county_names(db), "hospitals": service.hospital_names(db, user),
            "error": "err_choose_scope", "form": {"scope": scope, "deadline_minutes": str(deadline_minutes)}},
            user=user, status_code=422)
    ids = campaign_service.resolve_scope(db, county=county if by_county else None,
                                         hospitals=None if by_county else chosen)
    beds = campaign_service.scope_size(db, hospital_ids=ids)
    if confirm_beds != str(beds):  # first step, or the roster changed since the confirmation page
        names = service.hospital_names(db, user)
        return render(request, "launch_confirm.html", {
            "by_county": by_county, "county": county, "hospital_ids": ids, "chosen": chosen, "beds": beds,
            "names": [names.get(i, str(i)) for i in ids], "deadline_minutes": deadline_minutes,
            "changed": bool(confirm_beds)}, user=user)
    campaign = campaign_service.create_campaign(
        db, hospital_ids=ids, deadline_s=deadline_minutes * 60, actor=f"user:{user.id}",
        scope={"county": county} if by_county else {"hospitals": chosen})
    return redirect(f"{PREFIX}/dashboard?campaign_id={campaign.id}")


@router.get("/flags", response_class=HTMLResponse)
def flag_queue(request: Request, user: CurrentUser, db: Db, filters: Filters,
               page: int = Query(default=1, ge=1, le=100_000)) -> Response:
    # The navigation link opens what the reader can act on now; the last view they chose is one click away
    # (offered, not imposed: a remembered "all, 200 a page" must not hide the day's work for a month).
    saved = request.cookies.get(QUEUE_COOKIE, "")
    restore = saved if not request.query_params and saved and saved != urlencode(filters.query()) else ""
    result = service.flag_page(db, user, filters, page=page)
    response = render(request, "flags.html", {
        "result": result, "filters": filters, "query": filters.query(), "page_sizes": queue.PAGE_SIZES,
        "hospitals": service.hospital_names(db, user), "wards": queue.ward_names(db, user),
        "kinds": [k.value for k in FlagKind],
        "statuses": [*inbox.views(user), queue.ACTIONABLE_KEY, *(s.value for s in FlagStatus)], "restore": restore,
        "bulk": _bulk_choices(user), "done": request.query_params.get("bulk_done"),
        "skipped": request.query_params.get("bulk_skipped")}, user=user)
    response.set_cookie(QUEUE_COOKIE, urlencode(filters.query()), max_age=30 * 24 * 3600, httponly=True,
                        samesite="lax", path=PREFIX)
    return response


def _bulk_choices(user: UserAccount) -> dict[str, tuple[str, ...]]:
    """Decisions this role can take in bulk, each with the reasons that fit it from an open flag."""
    allowed = {to for (frm, to), move in workflow.TRANSITIONS.items()
               if user.role in move.roles and move.level != workflow.Level.APPEAL}
    choices: dict[str, tuple[str, ...]] = {}
    if FlagStatus.FIRST_REVIEWED in allowed:  # a first review recommends (server/flags/workflow.py)
        choices[workflow.Recommendation.CONFIRM.value] = tuple(r.value for r in (*workflow.CONFIRMING,
                                                                                 workflow.ReviewReason.OTHER))
        choices[workflow.Recommendation.DISMISS.value] = tuple(r.value for r in (*workflow.DISMISSING,
                                                                                 workflow.ReviewReason.OTHER))
    choices.update({to.value: actions.reasons_for(FlagStatus.FIRST_REVIEWED, to)
                    for to in (FlagStatus.CONFIRMED, FlagStatus.DISMISSED) if to in allowed})
    return choices


def _queue_filter(raw: str) -> service.FlagFilter:
    """The queue a form was posted from (its query string in a hidden field)."""
    return parse_filter(dict(parse_qsl(raw[:2000])))


@router.post("/flags/bulk", dependencies=[Csrf])
def bulk_review(request: Request, user: CurrentUser, db: Db, ids: Annotated[list[int] | None, Form()] = None,
                to: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
                comment: Annotated[str, Form(max_length=400)] = "",
                queue_query: Annotated[str, Form()] = "") -> Response:
    flags = [flag_service.load_flag(db, user, i) for i in dict.fromkeys(ids or [])]
    outcome = actions.bulk_review(db, flags=flags, actor=user, to=workflow.parse_decision(to), reason_code=reason,
                                  comment=comment)
    back = dict(parse_qsl(queue_query[:2000]), bulk_done=str(len(outcome.done)),
                bulk_skipped=str(len(outcome.skipped)))
    return redirect(f"{PREFIX}/flags?{urlencode(back)}")


@router.get("/flags/{flag_id}", response_class=HTMLResponse)
def flag_detail(request: Request, flag_id: int, user: CurrentUser, db: Db, queue_query: str = "") -> Response:
    return _flag_page(request, db, user, flag_id, queue_query=queue_query[:2000])


def _flag_page(request: Request, db: Db, user: UserAccount, flag_id: int, *, queue_query: str = "",
               form: dict[str, str] | None = None, error: InvalidInput | PayloadTooLarge | None = None) -> Response:
    view = service.flag_view(db, user, flag_id)
    return render(request, "flag.html", {
        "view": view, "detail_rows": details.rows(db, user, formatter(request), view.detail_items, PREFIX),
        "first_level": view.flag.status == FlagStatus.OPEN, "queue_query": queue_query,
        "form": form or {}, "form_error": error.details.get("text_key") if error else None,
        "form_error_file": error.details.get("file", "") if error else "",
        "error_field": error.details.get("field") if error else None}, user=user,
        status_code=error.http_status if error else 200)


@router.post("/flags/{flag_id}/review", dependencies=[Csrf])
def review(request: Request, flag_id: int, user: CurrentUser, db: Db, to: Annotated[str, Form()] = "",
           reason: Annotated[str, Form()] = "", comment: Annotated[str, Form(max_length=400)] = "",
           then: Annotated[str, Form()] = "", queue_query: Annotated[str, Form()] = "") -> Response:
    queue_query = queue_query[:2000]
    ids = queue.ordered_ids(db, user, _queue_filter(queue_query)) if then == "next" else []
    try:
        flag = flag_service.load_flag(db, user, flag_id)
        actions.review_flag(db, flag=flag, actor=user, to=workflow.parse_decision(to), reason_code=reason,
                            comment=comment)
    except InvalidInput as e:
        if "text_key" not in e.details:
            raise
        db.rollback()
        return _flag_page(request, db, user, flag_id, queue_query=queue_query, error=e,
                          form={"to": to, "reason": reason, "comment": comment})
    keep = f"&queue_query={quote(queue_query)}" if queue_query else ""
    following = queue.next_after(ids, flag_id) if then == "next" else None
    if then == "next" and following is None:
        return redirect(f"{PREFIX}/flags?{queue_query}" if queue_query else f"{PREFIX}/flags")
    return redirect(f"{PREFIX}/flags/{following or flag_id}?reviewed={flag_id}{keep}")


@router.post("/flags/{flag_id}/appeal", dependencies=[Csrf])
def appeal(request: Request, flag_id: int, user: CurrentUser, db: Db, statement: Annotated[str, Form()] = "",
           attachments: Annotated[list[UploadFile] | None, File()] = None) -> Response:
    # read(limit + 1): a file over the limit is refused without holding more of it than needed.
    uploads = [appeals.Upload(f.filename or "", f.file.read(appeals.MAX_ATTACHMENT_BYTES + 1))
               for f in attachments or []]
    try:
        flag = flag_service.load_flag(db, user, flag_id)
        actions.file_appeal(db, flag=flag, actor=user, statement=statement, uploads=uploads)
    except (InvalidInput, PayloadTooLarge) as e:
        if "text_key" not in e.details:
            raise
        db.rollback()
        return _flag_page(request, db, user, flag_id, error=e, form={"statement": statement})
    return redirect(f"{PREFIX}/flags/{flag_id}?appealed={flag_id}")


@router.get("/todo", response_class=HTMLResponse)
def my_todo(request: Request, user: CurrentUser, db: Db) -> Response:
    """我的待办: the counts of what this user can act on now, each opening the queue on exactly those flags;
    for hospital staff the flags themselves, with their appeal deadlines."""
    items = todo.todo(db, user) if user.role == Role.HOSPITAL_STAFF else []
    return render(request, "todo.html", {"piles": inbox.piles(db, user), "items": items}, user=user)


@router.get("/persons/{person_id}", response_class=HTMLResponse)
def person(request: Request, person_id: int, user: CurrentUser, db: Db) -> Response:
    return render(request, "person.html", {"page": people.person_page(db, user, person_id)}, user=user)
