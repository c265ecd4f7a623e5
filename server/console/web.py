"""What every console page shares: the session cookie, CSRF tokens, the page route class and rendering."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.routing import Match

from models.errors import AuthError, BedcheckError, CsrfFailed
from server.accounts.csrf import CSRF_COOKIE, check_csrf, csrf_token
from server.accounts.tables import UserAccount
from server.console.format import Formatter
from server.console.i18n import DEFAULT_LANGUAGE, LANGUAGES, translator

SESSION_COOKIE = "bedcheck_session"  # the cookie server/accounts/deps.py reads
LANG_COOKIE = "bedcheck_lang"
PREFIX = "/console"
# Pages load scripts and styles from /console/static only; images are same-origin routes.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; "
                               "base-uri 'self'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


@cache
def templates() -> Jinja2Templates:
    return Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))


def _is_secure(request: Request) -> bool:
    return bool(request.app.state.settings.environment == "production")


def language(request: Request) -> str:
    """`?lang=en` on any page switches (and is remembered in a cookie); Chinese otherwise."""
    lang = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE, DEFAULT_LANGUAGE)
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def start_session(response: Response, request: Request, token: str) -> None:
    """The session cookie carries the signed user token; it expires with the token (user_token_ttl_s)."""
    ttl_s = int(request.app.state.settings.user_token_ttl_s)
    response.set_cookie(SESSION_COOKIE, token, max_age=ttl_s, httponly=True, samesite="lax",
                        secure=_is_secure(request), path="/")


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


async def verify_csrf(request: Request) -> None:
    """Dependency of every console form post: the form's token must sign this browser's CSRF cookie."""
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))


def formatter(request: Request) -> Formatter:
    lang = language(request)
    return Formatter(lang, str(request.app.state.settings.timezone), translator(lang))


def render(request: Request, name: str, context: dict[str, Any], *, user: UserAccount | None = None,
           status_code: int = 200) -> HTMLResponse:
    lang = language(request)
    other = request.url.include_query_params(lang="en" if lang == "zh" else "zh")
    fmt = formatter(request)
    page = {"request": request, "t": fmt.t, "fmt": fmt, "lang": lang, "user": user, "prefix": PREFIX,
            "csrf_token": csrf_token(request), "switch_url": f"{other.path}?{other.query}", **context}
    response = templates().TemplateResponse(request, name, page, status_code=status_code)
    _set_csrf_cookie(request, response)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", path="/")
    return response


def _set_csrf_cookie(request: Request, response: Response) -> None:
    new = getattr(request.state, "new_csrf", None)
    if new:
        response.set_cookie(CSRF_COOKIE, new, httponly=True, samesite="strict", secure=_is_secure(request), path="/")


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


class PageRoute(APIRoute):
    """Console routes answer in HTML: no session -> the sign-in page; a known error -> an error page."""

    # Every console post checks the CSRF token of its form (verify_csrf), not the API's header.
    checks_form_csrf = True

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await handler(request)
            except AuthError as e:
                if e.http_status != 401:
                    response = error_page(request, e.http_status, "forbidden", _error_text(request, e))
                else:
                    target = _return_to(request)
                    expired = "&expired=1" if request.cookies.get(SESSION_COOKIE) else ""
                    response = redirect(f"{PREFIX}/sign-in?next={quote(target)}{expired}")
                    end_session(response)
            except BedcheckError as e:
                response = error_page(request, e.http_status, _error_key(e), _error_text(request, e))
            except RequestValidationError as e:
                # /console/flags/abc names no page: a 404, as any unknown address; a bad form value is a 422.
                if any(err.get("loc", ("",))[0] == "path" for err in e.errors()):
                    response = error_page(request, 404, "not_found", formatter(request).t("err_http_404"))
                else:
                    response = error_page(request, 422, "error", formatter(request).t("err_invalid_input"))
            response.headers.update(SECURITY_HEADERS)
            # Time spent in the app (queries and rendering), for browsers' dev tools and bench_console.py.
            response.headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            return response

        return page_handler


def _return_to(request: Request) -> str:
    """Where to come back after signing in again: this page, or for a form post the page the form was on
    (its URL answers POST only), so the reader lands on the form with the draft the browser kept."""
    if request.method == "GET":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    referer = urlsplit(request.headers.get("referer", ""))
    if not referer.path.startswith(PREFIX + "/") or referer.netloc not in ("", request.url.netloc):
        return f"{PREFIX}/dashboard"
    if _answers_get(request, referer.path):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    # The form was on a page rendered at a POST-only URL (a form error): its parent is the page.
    parent = referer.path.rsplit("/", 1)[0]
    return parent if _answers_get(request, parent) else f"{PREFIX}/dashboard"


def _answers_get(request: Request, path: str) -> bool:
    scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
    return any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes)


def error_text(request: Request, error: BedcheckError) -> str:
    return _error_text(request, error)


def _error_text(request: Request, error: BedcheckError) -> str:
    """The error in the page's language: the form's own text, else the text of its reason code."""
    t = formatter(request).t
    key = error.details.get("text_key") if isinstance(error.details, dict) else None
    for candidate in (key, f"err_{error.code.value}"):
        if candidate and t(candidate) != candidate:
            return t(candidate)
    return t("err_generic")


def _error_key(error: BedcheckError) -> str:
    if isinstance(error, CsrfFailed):
        return "csrf_failed"
    return {404: "not_found", 403: "forbidden"}.get(error.http_status, "error")


def error_page(request: Request, status_code: int, key: str, message: str) -> HTMLResponse:
    return render(request, "error.html", {"key": key, "message": message}, user=signed_in_user(request),
                  status_code=status_code)


def signed_in_user(request: Request) -> UserAccount | None:
    """The user of a valid session cookie, for the navigation bar of an error page; None otherwise."""
    from server.accounts.deps import get_current_user
    from server.db import get_db

    if not request.cookies.get(SESSION_COOKIE):
        return None
    db_scope = get_db(request)
    try:
        return get_current_user(request, next(db_scope))
    except (BedcheckError, StopIteration):
        return None
    finally:
        db_scope.close()
