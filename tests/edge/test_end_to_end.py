"""The edge client as its own process against the real server process, on real faces from ../shared/faces:
each kind of bed reaches its verdict on the server, once."""

from __future__ import annotations

import sqlite3
import stat

import httpx
import pytest
from sqlmodel import Session, col, select

from server.devices.service import set_fixed_camera
from server.devices.tables import Device
from server.hospitals.tables import Bed
from tests.edge.conftest import (
    build_ward,
    edge_cli,
    edge_env,
    free_port,
    image_folder,
    pairing_code,
    results_per_task,
    verdicts,
    wait_for,
)

pytestmark = [pytest.mark.faces, pytest.mark.slow]


def test_each_kind_of_bed_reaches_its_verdict_on_the_server(faces_dir, enroll, engine, server_process,
                                                            edge_processes, tmp_path) -> None:
    clips = faces_dir / "video_liveness"
    # Bed cameras film a capture session the server re-judges (issue 25): each face bed is a real clip of a
    # living person (a head turn, blinks, a mouth), enrolled from frames the device does not film (it films
    # motion_window_s from 0 s). Stills are not a session: a bed camera's photo is reviewed, never verified.
    ward = build_ward(engine, {
        "verified": enroll("clip:tran_real_headturns.mp4@18.5"),
        "verified_video": enroll("clip:liveportrait_d13_talking_blinks.mp4@9.0"),
        "impostor": enroll("people/colin_powell"),
        "impostor_video": enroll("ageitgey/alex_lacamoire"),
        "absent": enroll("people/tony_blair"),
        "spoof": enroll("people/hugo_chavez"),
        "nurse_empty": enroll("people/jacques_chirac"),
    })
    bed = ward.bed_labels
    sources = {
        bed["verified"]: str(clips / "tran_real_headturns.mp4"),
        bed["verified_video"]: str(clips / "liveportrait_d13_talking_blinks.mp4"),
        # The clips show other men than the patients enrolled.
        bed["impostor"]: str(clips / "liveportrait_d9_blinks.mp4"),
        bed["impostor_video"]: str(clips / "liveportrait_d12_mouth_turns.mp4"),
        bed["absent"]: image_folder(tmp_path, "nobody", [faces_dir / "bad/no_face_dogs.jpg",
                                                         faces_dir / "bad/no_face_cartoon.jpg"]),
        bed["spoof"]: image_folder(tmp_path, "photo", [faces_dir / "spoof/spoof_F1.jpg"]),
    }
    server = server_process()
    env = edge_env(tmp_path / "edge", bed_sources=sources, screen_port=free_port(), long_poll_s=5,
                   sync_interval_s=0.5, heartbeat_interval_s=2)
    paired = edge_cli(env, "pair", "--server", server.url, "--code", pairing_code(engine, ward.ward_id))
    assert paired.returncode == 0, paired.stderr
    credential = tmp_path / "edge" / "credentials.json"
    assert stat.S_IMODE(credential.stat().st_mode) == 0o600

    # A bureau user registers the device as the fixed camera of these beds: only then is its signs-of-life
    # liveness accepted for their tasks (a tablet must answer the challenge).
    with Session(engine) as db:
        [device] = db.exec(select(Device)).all()
        set_fixed_camera(db, device_id=device.id or 0, bed_ids=[b.id or 0 for b in db.exec(select(Bed).where(
            Bed.ward_id == ward.ward_id, col(Bed.label).in_(list(sources))))], actor="test")
    edge = edge_processes(env, tmp_path / "edge.log")
    screen = f"http://127.0.0.1:{env['BEDCHECK_EDGE_SCREEN_PORT']}"

    def nurse_bed_listed() -> bool:
        try:
            state = httpx.get(f"{screen}/state", timeout=2).json()
        except httpx.HTTPError:
            return False
        return any(t["bed"] == bed["nurse_empty"] for t in state["open_tasks"])

    wait_for(nurse_bed_listed, 60, "the nurse's screen to list the open task")
    answer = httpx.post(f"{screen}/beds/{bed['nurse_empty']}/empty", data={"note": "went home"}, timeout=10)
    assert answer.status_code in (200, 303)

    task_ids = ward.task_ids
    wait_for(lambda: all(verdicts(engine)[t] != "pending" for t in task_ids.values()), 240,
             "every task to reach a verdict")
    found = {name: verdicts(engine)[task_id] for name, task_id in task_ids.items()}
    assert found == {"verified": "verified", "verified_video": "verified", "impostor": "impersonated",
                     "impostor_video": "impersonated", "absent": "absent",
                     # A bed camera watching one still photo sees no sign of life: review, never verified.
                     "spoof": "unrecognised",
                     "nurse_empty": "absent"}
    assert results_per_task(engine) == {t: 1 for t in task_ids.values()}

    assert edge.terminate() == 0  # SIGTERM: a clean stop
    with sqlite3.connect(tmp_path / "edge" / "outbox.sqlite3") as outbox:
        rows = outbox.execute("SELECT state, payload, server_verdict, local_verdict FROM result").fetchall()
    assert len(rows) == len(task_ids)
    # Acknowledged: the evidence is gone from the device, the receipt stays.
    assert all(state == "sent" and payload is None and server for state, payload, server, _ in rows)
