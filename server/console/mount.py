"""Wires the console into the app: its page routers, its static files and its own 404/405 pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.console.web import PREFIX, SECURITY_HEADERS


def mount_console(app: FastAPI) -> None:
    from server.admissions import pages as leave_pages
    from server.console import downloads, pages, references
    from server.reports import pages as report_pages

    app.include_router(pages.public)
    app.include_router(pages.router)
    app.include_router(downloads.router)
    app.include_router(report_pages.router)
    app.include_router(leave_pages.router)
    app.include_router(references.router)
    # The address a person types first: the console, not the API's JSON.
    app.add_api_route("/", lambda: RedirectResponse(PREFIX, status_code=307), include_in_schema=False, name="root")
    static = Path(__file__).resolve().parent / "static"
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(static)), name="console_static")
    _html_errors_under_console(app)


def _is_page(path: str) -> bool:
    return path == PREFIX or (path.startswith(PREFIX + "/") and not path.startswith(f"{PREFIX}/static/"))


def _html_errors_under_console(app: FastAPI) -> None:
    """An unknown console URL or a wrong method is a page with the navigation bar, not the API's JSON."""
    api_handler = app.exception_handlers.get(StarletteHTTPException)

    async def handler(request: Request, exc: Exception) -> Response:
        from server.console.web import error_page, formatter

        assert isinstance(exc, StarletteHTTPException)
        if not _is_page(request.url.path) or exc.status_code not in (404, 405):
            if api_handler is None:
                raise exc
            return await api_handler(request, exc)  # type: ignore[no-any-return]
        key = "not_found" if exc.status_code == 404 else "method_not_allowed"
        response = error_page(request, exc.status_code, key, formatter(request).t(f"err_http_{exc.status_code}"))
        response.headers.update(SECURITY_HEADERS)
        return response

    app.add_exception_handler(StarletteHTTPException, handler)
