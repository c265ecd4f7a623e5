"""Print attacks the project has never seen: real still photos of ../shared/faces/people (and asian_dev when
present), flat or bent round a cup, swung and moved in front of the camera (tests/engine/print_attacks.py).

Every server challenge moves the head, so the 3-D test is a proof each burst must give: at least 99 % of the
sequences must fail it (`planar_motion`, or `no_3d_motion` when the fitted pose never turned far enough to be
measured), at most 1 % may look like a head (`3d`), and no sequence may pass its random challenge. Measured
(docs/benchmarks.md): the head pose fitted to a swung photo seldom moves the 10 degrees the test measures from,
so most are refused as showing no 3-D motion rather than found planar.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from models.faces.liveness.planarity import Planarity
from models.faces.liveness.track import default_landmarker
from models.settings import EngineSettings
from tests.engine.print_attacks import judged_attacks

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
    verdicts: list[Planarity] = []
    passed: list[str] = []
    refused_by_3d = 0
    for judged in judged_attacks(_photos(faces_dir), default_landmarker(settings), settings, 1515, frames=FRAMES):
        if judged.result is None:
            continue
        assert judged.result.planarity is not None
        verdicts.append(judged.result.planarity.verdict)
        refused_by_3d += judged.refused_by_3d_test
        if judged.result.is_live:
            passed.append(f"{judged.photo.parent.name}/{judged.photo.name} bend={judged.attack.bend_radius} "
                          f"{judged.challenge}")
        if len(verdicts) == SEQUENCES:
            break
    solid = sum(v == Planarity.SOLID for v in verdicts)
    counts = {v.value: verdicts.count(v) for v in Planarity}
    print(f"print attacks: {counts} over {len(verdicts)} sequences, refused by the 3-D test {refused_by_3d}")
    assert refused_by_3d >= 0.99 * len(verdicts), (refused_by_3d, counts)
    assert solid <= 0.01 * len(verdicts), counts
    assert passed == []
