"""The server's fused probe: the crop and each key frame that passes the quality gates and shows the crop's face,
encoded by the server itself; each frame's distance to the template is kept as evidence (issue 28)."""

from __future__ import annotations

import base64
import hashlib
import io
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.faces import crop_to_jpeg
from models.faces.decode import load_image_file
from models.faces.engine import FaceEngine
from models.faces.match import Embeddings, person_distance
from models.faces.templates import template_of
from models.settings import EngineSettings
from models.verdicts import CaptureOutcome
from models.wire import KeyFrame, LivenessReport, ResultUpload
from server.checks.evidence import CropEncoder, CropLimits, Evidence, KeyFrameLimits, frame_distances

LIVE = LivenessReport(is_live=True, score=0.9, blink_detected=True, passive_score=0.9)


def _jpeg(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _frame(data: bytes, role: str) -> KeyFrame:
    return KeyFrame(role=role, time_s=0.5, jpeg_b64=base64.b64encode(data).decode(),
                    sha256=hashlib.sha256(data).hexdigest())


@pytest.mark.faces
def test_the_probe_fuses_the_crop_with_the_key_frames_that_show_its_face(faces_dir: Path) -> None:
    settings = EngineSettings()
    engine = FaceEngine(settings)
    people = faces_dir / "people"
    image = load_image_file(people / "george_w_bush" / "02.jpg", settings)
    burst = engine.check_burst([image, image, image])
    assert burst.crop_rgb is not None
    crop = crop_to_jpeg(burst.crop_rgb)
    neutral = _jpeg(load_image_file(people / "george_w_bush" / "03.jpg", settings))
    someone_else = _jpeg(load_image_file(people / "tony_blair" / "01.jpg", settings))
    blank = _jpeg(np.full((240, 320, 3), 128, dtype=np.uint8))
    scene = _jpeg(np.full((240, 320, 3), 90, dtype=np.uint8))
    upload = ResultUpload(
        idempotency_key=uuid.uuid4().hex, task_id=1, nonce="n" * 16, outcome=CaptureOutcome.FACE_CAPTURED,
        captured_at=datetime.now(UTC), engine_version=settings.engine_tag, liveness=LIVE,
        embedding=[float(x) for x in burst.encoding],  # type: ignore[union-attr]
        face_crop_jpeg_b64=base64.b64encode(crop).decode(), evidence_sha256=hashlib.sha256(crop).hexdigest(),
        scene_jpeg_b64=base64.b64encode(scene).decode(),
        key_frames=[_frame(neutral, "neutral"), _frame(someone_else, "blink"), _frame(blank, "turn_left")])
    encoder = CropEncoder(settings, CropLimits(200_000, 512), accept_synthetic=False, scene_limits=settings,
                          key_frame_limits=KeyFrameLimits(200_000, 1024))
    evidence = encoder.evidence_for(upload)
    assert isinstance(evidence, Evidence) and evidence.vector is not None and evidence.probe is not None

    enrolled_vectors = [engine.encode_largest(load_image_file(people / "george_w_bush" / name, settings))
                        for name in ("01.jpg", "04.jpg")]
    enrolled = Embeddings.of(settings.engine_tag, np.stack(enrolled_vectors))  # type: ignore[arg-type]
    frames = frame_distances(evidence, enrolled)
    assert [(f["role"], f["used"], f["reason"]) for f in frames] == [
        ("crop", True, "used"), ("neutral", True, "used"), ("blink", False, "disagrees"),
        ("turn_left", False, "no_face")]
    # The probe is the crop's and the neutral frame's mean; the stranger's frame adds nothing.
    expected = template_of(np.stack([evidence.vector, encoder.encode_key_frames(evidence.key_frames[:1])[0].vector]))
    assert np.allclose(evidence.probe.vectors[0], expected)
    fused = person_distance(enrolled, evidence.probe)
    used = [f["distance"] for f in frames if f["used"]]
    # The mean of two views is never farther than the worse view (its cosine is at least their mean cosine).
    assert fused <= max(used) + 1e-4
    assert fused <= settings.match_threshold
