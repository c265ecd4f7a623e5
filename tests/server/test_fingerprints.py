"""The evidence-used-once rule as plain functions (server/evidence/fingerprints.py, replay.py): what counts as a
copy, which earlier captures a new one is compared with, and a copy written by another worker meanwhile."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from models.faces import crop_to_jpeg
from server.evidence.fingerprints import EvidencePart, fingerprint, perceptual_hash
from server.evidence.replay import Capture, check_late
from server.simulation.scenes import render_room


def _copy(jpeg: bytes, quality: int = 60) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


FRAME = crop_to_jpeg(render_room(7))
OTHER = crop_to_jpeg(render_room(8))
EARLIER = Capture(result_id=1, task_id=10, bed_id=100, insured_person_id=1000, device_id=5)


def _frame(data: bytes, position: int = 0):
    return fingerprint(EvidencePart.KEY_FRAME, position, data)


def test_a_flat_image_has_no_perceptual_hash_and_is_compared_by_its_bytes_only() -> None:
    flat = crop_to_jpeg(np.full((64, 64, 3), 128, np.uint8))
    assert perceptual_hash(flat) is None and perceptual_hash(FRAME) is not None


def test_a_copy_written_by_another_worker_meanwhile_is_found_for_the_same_bed_only() -> None:
    written = [(EARLIER, _frame(FRAME))]
    same_bed = Capture(result_id=2, task_id=11, bed_id=100, insured_person_id=1001, device_id=6)
    found = check_late(same_bed, [_frame(_copy(FRAME))], written)
    assert found is not None and found["reason"] == "repeated_frame" and found["earlier_task_id"] == 10
    unrelated = Capture(result_id=2, task_id=11, bed_id=101, insured_person_id=1001, device_id=6)
    assert check_late(unrelated, [_frame(_copy(FRAME))], written) is None  # near copies: same bed/person/device
    assert check_late(unrelated, [_frame(FRAME)], written)["reused"][0]["exact"] is True  # bytes: anywhere
    same_task = Capture(result_id=2, task_id=10, bed_id=100, insured_person_id=1000, device_id=5)
    assert check_late(same_task, [_frame(FRAME)], written) is None  # a task's own resent result
    assert check_late(same_bed, [_frame(OTHER)], written) is None  # another picture


def test_a_near_scene_alone_is_no_proof_but_beside_a_reused_frame_it_is() -> None:
    written = [(EARLIER, fingerprint(EvidencePart.SCENE, 0, FRAME)), (EARLIER, _frame(OTHER))]
    later = Capture(result_id=2, task_id=11, bed_id=100, insured_person_id=1000, device_id=5)
    scene_only = [fingerprint(EvidencePart.SCENE, 0, _copy(FRAME))]
    assert check_late(later, scene_only, written) is None
    found = check_late(later, [*scene_only, _frame(_copy(OTHER))], written)
    assert found is not None and found["reason"] == "repeated_scene"
    assert {r["part"] for r in found["reused"]} == {"scene", "key_frame"}
    exact = check_late(later, [fingerprint(EvidencePart.SCENE, 0, FRAME)], written)
    assert exact is not None and exact["reused"][0]["exact"] is True
