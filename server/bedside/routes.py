"""`/bedside`: the bedside web app's shell and files (public: they hold no personal data), and the ward board
a paired browser reads with its device credential.

The app is built at install time (`make`, web/bedside) into `static/`, which git ignores; the server never
needs Node. Hashed bundles, the WebAssembly runtime and the detector model are cacheable; the shell and the
service worker are not, so a new build reaches every tablet at its next load.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from server.accounts.deps import SUPERVISORS, CurrentUser
from server.bedside import inspections
from server.bedside.inspections import HospitalTarget, InspectionCreate, InspectionRead
from server.bedside.service import WardBoard, ward_board
from server.db import Db
from server.devices.deps import CurrentDevice

STATIC_DIR = Path(__file__).resolve().parent / "static"

device_router = APIRouter(prefix="/api/v1/device", tags=["device"])
shell_router = APIRouter(include_in_schema=False)

_NOT_BUILT = """<!doctype html><html lang="zh-CN"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>床旁核查</title>
<body style="font-family:sans-serif;padding:1.5rem"><h1>床旁核查应用尚未构建</h1>
<p>服务器上缺少床旁核查应用的文件。请管理员在服务器上运行 <code>make install</code>（需要 npm）后重启服务。</p>
<p lang="en">The bedside app has not been built: run <code>make install</code> on the server.</p></body></html>"""


@device_router.get("/board", response_model=WardBoard)
def board(device: CurrentDevice, db: Db) -> WardBoard:
    """The device's ward: each bed with the state of its latest check and the time left."""
    return ward_board(db, ward_id=device.ward_id)


def _file(name: str, media_type: str | None = None) -> Response:
    path = STATIC_DIR / name
    if not path.is_file():
        return HTMLResponse(_NOT_BUILT, status_code=503)
    return FileResponse(path, media_type=media_type)


@shell_router.get("/bedside", name="bedside_root")
def bedside_root() -> RedirectResponse:
    return RedirectResponse("/bedside/", status_code=308)


@shell_router.get("/bedside/", name="bedside_shell")
def bedside_shell() -> Response:
    return _file("index.html", "text/html; charset=utf-8")


@shell_router.get("/bedside/sw.js", name="bedside_service_worker")
def bedside_service_worker() -> Response:
    response = _file("sw.js", "text/javascript; charset=utf-8")
    response.headers["Service-Worker-Allowed"] = "/bedside/"
    return response


@shell_router.get("/bedside/manifest.webmanifest", name="bedside_manifest")
def bedside_manifest() -> Response:
    return _file("manifest.webmanifest", "application/manifest+json")


class _ImmutableFiles(StaticFiles):
    """Bundles named by their content hash, and runtime files named by version: cached for a year."""

    def file_response(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def mount_bedside(app: FastAPI) -> None:
    from server.bedside.pages import router as pages_router

    app.include_router(shell_router)
    app.include_router(pages_router)
    for folder in ("assets", "ort", "models"):
        app.mount(f"/bedside/{folder}", _ImmutableFiles(directory=STATIC_DIR / folder, check_dir=False),
                  name=f"bedside_{folder}")


inspections_router = APIRouter(prefix="/api/v1/inspections", tags=["inspections"])


@inspections_router.get("/targets", response_model=list[HospitalTarget])
def inspection_targets(user: CurrentUser, db: Db) -> list[HospitalTarget]:
    """Where an inspector may go: hospitals, their wards and current inpatients (bureau supervisors)."""
    SUPERVISORS(user)
    return inspections.targets(db)


@inspections_router.post("", response_model=InspectionRead)
def start_inspection(body: InspectionCreate, user: CurrentUser, db: Db) -> InspectionRead:
    """Start an on-site check (移动稽查) on this browser: an unannounced spot check only its device answers."""
    SUPERVISORS(user)
    return inspections.start(db, user=user, body=body)
