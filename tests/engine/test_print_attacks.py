"""Print attacks the project has never seen: real still photos of ../shared/faces/people (and asian_dev when
present), flat or bent round a cup, swung and moved in front of the camera (tests/engine/print_attacks.py).

Every server challenge moves the head, so the 3-D test is a proof each burst must give: at least 99 % of the
sequences must fail it (`planar_motion`, or `no_3d_motion` when the fitted pose never turned far enough to be
measured), at most 1 % may look like a head (`3d`), and no sequence may pass its random challenge. Measured
(docs/benchmarks.md): the head pose fitted to a swung photo seldom moves the 10 degrees the test measures from,
so most are refused as showing no 3-D motion rather than found planar.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from models.faces.decode import load_image_file
from models.faces.detect import Box, detect_faces
from models.faces.liveness.actions import draw_challenge
from models.faces.liveness.judge import check_challenge
from models.faces.liveness.planarity import Planarity
from models.faces.liveness.track import DlibLandmarker, track_frames
from models.settings import EngineSettings
from tests.engine.print_attacks import attack_sequence, portrait

# A hundred sequences of 12 frames each (a 2.4 s swing at 5 frames a second): at most one may look 3-D.
pytestmark = [pytest.mark.faces, pytest.mark.slow, pytest.mark.timeout(1800)]

SEQUENCES = 100
FRAMES = 12


def _photos(faces_dir: Path) -> list[Path]:
    photos = sorted((faces_dir / "people").glob("*/*.jpg"))
    photos += sorted((faces_dir / "asian_dev").glob("images/*/*.jpg"))[::4]
    return photos


def test_print_attacks_are_refused_by_the_3d_test(faces_dir: Path) -> None:
    settings = EngineSettings()
    landmarker = DlibLandmarker(settings)
    rng = np.random.default_rng(1515)
    draw = random.Random(1515)
    photos = _photos(faces_dir)
    boxes: dict[Path, Box | None] = {}
    verdicts: list[Planarity] = []
    passed: list[str] = []
    skipped = 0
    refused_by_3d = 0
    while len(verdicts) < SEQUENCES:
        path = photos[int(rng.integers(len(photos)))]
        photo = load_image_file(path, settings)
        if path not in boxes:
            found = detect_faces(photo, settings, thorough=False)
            boxes[path] = found[0] if found else None
        box = boxes[path]
        if box is None:
            skipped += 1
            assert skipped < SEQUENCES, "hardly any photo shows a face"
            continue
        attack = attack_sequence(portrait(photo, (box.top, box.right, box.bottom, box.left), rng), rng,
                                 frames=FRAMES, fps=5.0)
        track = track_frames(attack.frames, attack.times_s, landmarker, settings)
        if len(track.tracked) < 3:
            continue  # the sheet turned too far for the detector: nothing a device could judge either
        challenge = draw_challenge(draw, 2)
        result = check_challenge(track, challenge, settings)
        assert result.planarity is not None
        verdicts.append(result.planarity.verdict)
        if {"planar_motion", "no_3d_motion"} & set(result.reasons):
            refused_by_3d += 1
        if result.is_live:
            passed.append(f"{path.parent.name}/{path.name} bend={attack.bend_radius} {challenge}")
    solid = sum(v == Planarity.SOLID for v in verdicts)
    counts = {v.value: verdicts.count(v) for v in Planarity}
    print(f"print attacks: {counts} over {len(verdicts)} sequences, refused by the 3-D test {refused_by_3d}")
    assert refused_by_3d >= 0.99 * len(verdicts), (refused_by_3d, counts)
    assert solid <= 0.01 * len(verdicts), counts
    assert passed == []
