"""The edge client as its own process against the real server process, on real faces from ../shared/faces:
each kind of bed reaches its verdict on the server, once."""

from __future__ import annotations

import sqlite3
import stat

import httpx
import pytest

from tests.edge.conftest import (
    HAMILTON,
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
    people = faces_dir / "people"
    ward = build_ward(engine, {
        "verified": enroll("people/george_w_bush"),
        "verified_video": enroll("video@3.0"),
        "impostor": enroll("people/colin_powell"),
        "impostor_video": enroll("ageitgey/alex_lacamoire"),
        "absent": enroll("people/tony_blair"),
        "spoof": enroll("people/hugo_chavez"),
        "nurse_empty": enroll("people/jacques_chirac"),
    })
    bed = ward.bed_labels
    sources = {
        bed["verified"]: image_folder(tmp_path, "bush", sorted((people / "george_w_bush").glob("*"))[3:7]),
        bed["verified_video"]: f"{faces_dir / HAMILTON}#t=4.5",
        # Stills of one man in several poses, as a bed camera's burst: the 3-D test needs three turned frames.
        bed["impostor"]: image_folder(tmp_path, "rumsfeld", sorted((people / "donald_rumsfeld").glob("*"))[3:10]),
        # The clip shows Lin-Manuel Miranda; the patient enrolled is Alex Lacamoire.
        bed["impostor_video"]: f"{faces_dir / HAMILTON}#t=4.5",
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
