"""Bedside web app benchmark, in headless Chromium against the real server on loopback.

    .venv/bin/python scripts/bench_bedside.py [--throttle 4] [--clip PATH]

Prints:
- bytes the server sent for the first load of /bedside/ (shell, bundle, and everything the service worker
  precaches: the WebAssembly runtime and the detector model) and for a second, cached load;
- time from tapping a bed to the first prompt (the detector loading, the camera opening, the face found);
- feedback frames per second (on-device face detections a second) with Chromium's CPU throttled --throttle times;
- the upload size of one check (the JSON the outbox sends).
The camera is Chromium's fake device fed with a .y4m written to a temporary folder: a real clip from
../shared/faces/video_liveness when present (local figures only; the clip is not kept), else the timing
figures are skipped with the reason.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import uvicorn  # noqa: E402
from sqlmodel import Session  # noqa: E402

from models.settings import EngineSettings  # noqa: E402
from server.app import create_app  # noqa: E402
from server.bedside.routes import STATIC_DIR  # noqa: E402
from server.campaigns import service as campaign_service  # noqa: E402
from server.db import make_engine, upgrade  # noqa: E402
from server.settings import ServerSettings  # noqa: E402
from tests import factories  # noqa: E402
from tests.bedside.camera import with_lead, write_y4m  # noqa: E402
from tests.fixtures.live_server import free_port  # noqa: E402

DEFAULT_CLIP = Path(os.environ.get("BEDCHECK_FACES_DIR", Path(__file__).resolve().parents[2] / "shared" / "faces"))
DEFAULT_CLIP = DEFAULT_CLIP / "video_liveness" / "tran_real_headturns.mp4"


class ByteCounter:
    """ASGI wrapper counting the body bytes sent per path (what crossed the wire, no compression here)."""

    def __init__(self, app) -> None:
        self.app, self.sent = app, Counter()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]

        async def counting(message):
            if message["type"] == "http.response.body":
                self.sent[path] += len(message.get("body", b""))
            await send(message)

        return await self.app(scope, receive, counting)


def clip_frames(path: Path, seconds: float) -> tuple[list, int]:
    capture = cv2.VideoCapture(str(path))
    fps = int(round(capture.get(cv2.CAP_PROP_FPS) or 30))
    frames = []
    while len(frames) < seconds * fps:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return frames, fps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--throttle", type=float, default=4.0, help="Chromium CPU throttling rate")
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    args = parser.parse_args()
    if not (STATIC_DIR / "sw.js").is_file():
        print("the bedside app is not built: run `make bedside`", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        engine = make_engine(url)
        upgrade(engine)
        with Session(engine, expire_on_commit=False) as db:
            world = factories.build_world(db, hospitals_n=1, patients_per_ward=["a", "b", "c"])
            code = factories.pairing_code(db, world.ward_ids[0])
            campaign_service.create_campaign(db, hospital_ids=world.hospital_ids, deadline_s=3600, actor="bench")
        app = ByteCounter(create_app(ServerSettings(database_url=url, environment="test", run_scheduler=False),
                                     EngineSettings()))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"

        camera_args: list[str] = []
        if args.clip.is_file():
            frames, fps = clip_frames(args.clip, 16.0)
            camera = write_y4m(Path(tmp) / "camera.y4m", with_lead(frames, fps, 1.0), fps)
            camera_args = ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={camera}"]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--use-fake-ui-for-media-stream", *camera_args])
            context = browser.new_context(base_url=base, locale="zh-CN", viewport={"width": 800, "height": 1280},
                                          permissions=["camera"])
            page = context.new_page()
            app.sent.clear()
            page.goto(f"/bedside/?code={code}")
            page.evaluate("navigator.serviceWorker.ready.then(() => true)")
            time.sleep(1.0)
            first = sum(n for p, n in app.sent.items() if p.startswith("/bedside"))
            page.click("#pair-submit")
            page.wait_for_selector("#beds li")
            app.sent.clear()
            page.reload()
            page.wait_for_selector("#beds li")
            cached = sum(n for p, n in app.sent.items() if p.startswith("/bedside"))
            print(f"first load: {first / 1e6:.2f} MB sent by the server (shell, bundle, precached runtime and model)")
            print(f"cached load: {cached / 1e3:.1f} kB sent (the shell's network-first check)")
            if not camera_args:
                print(f"tap to first prompt, feedback fps, upload size: skipped ({args.clip} not found)")
                return 0
            cdp = context.new_cdp_session(page)
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": args.throttle})
            page.click("#beds li:first-child button")
            page.wait_for_function("window.bedside.stats.firstPromptAt !== null && "
                                   "window.bedside.stats.firstPromptAt !== undefined", timeout=120_000)
            stats = page.evaluate("({...window.bedside.stats})")
            print(f"tap to first prompt: {(stats['firstPromptAt'] - stats['tappedAt']) / 1000:.2f} s "
                  f"(CPU throttled {args.throttle:g}x)")
            page.wait_for_selector("#back", timeout=120_000)
            stats = page.evaluate("({...window.bedside.stats})")
            print(f"feedback: {stats['sessionFrames'] / stats['sessionSeconds']:.1f} frames/s over the session "
                  f"({stats['sessionFrames']} frames in {stats['sessionSeconds']:.1f} s), "
                  f"{stats['detectMs'] / stats['detections']:.0f} ms a detection (CPU throttled {args.throttle:g}x)")
            print(f"upload per check: {stats['lastUploadBytes'] / 1e3:.0f} kB of JSON")
            browser.close()
        server.should_exit = True
    return 0


if __name__ == "__main__":
    sys.exit(main())
