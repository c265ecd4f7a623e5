"""The nurse's page: the ward's beds, open tasks, recent results; mark a bed empty or a patient exempt.

Served on loopback only, without sign-in: whoever holds the tablet is the nurse. Because any web page
the tablet's browser opens could post to 127.0.0.1, writes require a Host of this loopback address and,
when the browser sends one, a matching Origin (no cross-site forms, no DNS rebinding). No face image is
ever shown or served: results are listed by bed, verdict and time.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from edge_client.config import EdgeSettings
from edge_client.device import CheckRefused, Device
from edge_client.outbox import AlreadyAnswered
from edge_client.sources import SourceError
from models.errors import BedcheckError
from models.faces.liveness.actions import CANNOT_TAKE_PART_ZH, CannotTakePart
from models.verdicts import ExemptionReason

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]"}


def create_screen_app(device: Device, settings: EdgeSettings, on_change: Callable[[], None] | None = None) -> FastAPI:
    app = FastAPI(title="bedcheck-edge", docs_url=None, redoc_url=None, openapi_url=None)
    changed = on_change or (lambda: None)

    def guard(request: Request) -> None:
        host = (request.headers.get("host") or "").rsplit(":", 1)[0]
        origin = request.headers.get("origin")
        if host not in LOOPBACK_HOSTS or (origin is not None and origin.split("//")[-1].rsplit(":", 1)[0]
                                          not in LOOPBACK_HOSTS):
            raise HTTPException(403, "the nurse screen accepts requests from this device only")

    def act(request: Request, action: Callable[[], object]) -> RedirectResponse:
        guard(request)
        try:
            action()
        except AlreadyAnswered as e:
            raise HTTPException(409, str(e)) from e
        except (CheckRefused, SourceError, BedcheckError) as e:
            raise HTTPException(422, str(e)) from e
        changed()
        return RedirectResponse("/", status_code=303)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return render_page(device)

    @app.get("/state")
    def state() -> dict[str, Any]:
        return screen_state(device)

    @app.post("/beds/{bed_label}/empty")
    def empty(request: Request, bed_label: str, note: Annotated[str, Form(max_length=400)] = "") -> RedirectResponse:
        return act(request, lambda: device.mark_empty(bed_label, note or "bed empty (nurse)"))

    @app.post("/beds/{bed_label}/exempt")
    def exempt(request: Request, bed_label: str, reason: Annotated[ExemptionReason, Form()],
               note: Annotated[str, Form(max_length=400)] = "") -> RedirectResponse:
        return act(request, lambda: device.mark_exempt(bed_label, reason, note))

    @app.post("/beds/{bed_label}/check")
    async def check(request: Request, bed_label: str) -> RedirectResponse:
        guard(request)
        source = settings.bed_sources.get(bed_label, settings.tablet_source)
        return await run_in_threadpool(act, request, lambda: device.check_bed(bed_label, source))

    @app.post("/beds/{bed_label}/cannot-take-part")
    async def cannot_take_part(request: Request, bed_label: str, reason: Annotated[CannotTakePart, Form()],
                               note: Annotated[str, Form(max_length=400)] = "") -> RedirectResponse:
        """The patient cannot do the challenge (unconscious, infant, ...): face captured, sent to review."""
        guard(request)
        source = settings.bed_sources.get(bed_label, settings.tablet_source)
        return await run_in_threadpool(act, request, lambda: device.check_bed(
            bed_label, source, cannot_take_part=reason, note=note))

    @app.get("/challenge")
    def challenge() -> dict[str, Any]:
        """The challenge being filmed now (prompts, ticks, seconds left), polled by the page."""
        return device.progress.state() if device.progress is not None else {}

    return app


def screen_state(device: Device) -> dict[str, Any]:
    roster = device.outbox.roster()
    return {
        "ward": roster.ward_name if roster else None,
        "beds": [{"bed": b.bed_label, "patient": b.display_name, "exemption": b.exemption,
                  "enrolled": len(b.embeddings)} for b in (roster.beds if roster else [])],
        "open_tasks": [{"task_id": t.task_id, "bed": t.bed_label, "deadline_at": t.deadline_at.isoformat()}
                       for t in device.outbox.open_tasks()],
        "results": [{"id": r.id, "bed": r.bed_label, "device_verdict": r.local_verdict, "state": r.state.value,
                     "server_verdict": r.server_verdict, "error": r.last_error, "at": r.created_at}
                    for r in device.outbox.results(50)],
        "outbox": device.outbox.counts(),
    }


def render_page(device: Device) -> str:
    data = screen_state(device)
    e = html.escape
    open_beds = {t["bed"]: t for t in data["open_tasks"]}
    reasons = "".join(f"<option>{r.value}</option>" for r in ExemptionReason)
    unable = "".join(f'<option value="{r.value}">{e(CANNOT_TAKE_PART_ZH[r])}</option>' for r in CannotTakePart)
    rows = []
    for bed in data["beds"]:
        label = e(str(bed["bed"]))
        task = open_beds.get(bed["bed"])
        actions = "" if task is None else (
            f'<form method=post action="/beds/{label}/check"><button>check now</button></form>'
            f'<form method=post action="/beds/{label}/empty"><input name=note placeholder="why empty">'
            f'<button>bed empty</button></form>'
            f'<form method=post action="/beds/{label}/exempt"><select name=reason>{reasons}</select>'
            f'<input name=note placeholder="details"><button>exempt</button></form>'
            f'<form method=post action="/beds/{label}/cannot-take-part"><select name=reason>{unable}</select>'
            f'<input name=note placeholder="说明"><button>无法配合（拍照送复核）</button></form>')
        status = "pending check" if task else e(str(bed["exemption"] or ""))
        rows.append(f"<tr><td>{label}</td><td>{e(str(bed['patient']))}</td><td>{status}</td><td>{actions}</td></tr>")
    results = "".join(
        f"<tr><td>{e(str(r['bed']))}</td><td>{e(str(r['device_verdict']))}</td><td>{e(str(r['state']))}</td>"
        f"<td>{e(str(r['server_verdict'] or ''))}</td><td>{e(str(r['error']))}</td><td>{e(str(r['at']))}</td></tr>"
        for r in data["results"])
    outbox = ", ".join(f"{k}: {v}" for k, v in data["outbox"].items())
    return (f"<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=10><title>bedcheck</title>"
            f"<h1>Ward {e(str(data['ward'] or '?'))}</h1><p>Outbox: {e(outbox)}</p>{_CHALLENGE_PANEL}"
            f"<table border=1><tr><th>bed</th><th>patient</th><th>status</th><th></th></tr>{''.join(rows)}</table>"
            f"<h2>Results</h2><table border=1><tr><th>bed</th><th>device</th><th>upload</th><th>server</th>"
            f"<th>error</th><th>at</th></tr>{results}</table>")


# The challenge prompt, with live ticks: polled twice a second while a check is being filmed. Text only
# (textContent), never HTML from the device state.
_CHALLENGE_PANEL = """<div id=challenge style="font-size:2em"></div><script>
async function poll(){try{const s=await (await fetch('/challenge')).json();
const box=document.getElementById('challenge');box.textContent='';
if(s.steps){for(const st of s.steps){const p=document.createElement('div');
p.textContent=(st.done?'✔ ':'… ')+st.prompt;box.appendChild(p);}const t=document.createElement('div');
t.textContent=s.finished===null?('剩余 '+s.seconds_left+' 秒'+(s.face_seen?'':'（未检测到人脸）'))
:(s.finished?'活体通过':'活体未通过');
box.appendChild(t);}}catch(e){}setTimeout(poll,500);}poll();</script>"""


class ScreenServer:
    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="edge-screen", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_screen(device: Device, settings: EdgeSettings, on_change: Callable[[], None] | None = None) -> ScreenServer:
    screen = ScreenServer(create_screen_app(device, settings, on_change), settings.screen_host, settings.screen_port)
    screen.start()
    return screen
