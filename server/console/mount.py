"""Wires the console into the app: its page routers and its static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from server.console.web import PREFIX


def mount_console(app: FastAPI) -> None:
    from server.console import downloads, pages

    app.include_router(pages.public)
    app.include_router(pages.router)
    app.include_router(downloads.router)
    static = Path(__file__).resolve().parent / "static"
    app.mount(f"{PREFIX}/static", StaticFiles(directory=str(static)), name="console_static")
