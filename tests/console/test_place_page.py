"""The place (实地) section of a flag page: the scene frame beside the bed's reference, the place score against its
threshold and the device's cues in words; the images private (no-store) and out of reach of other hospitals."""

from __future__ import annotations

import io
import re
import zipfile
from contextlib import closing

import numpy as np
import pytest
from sqlmodel import Session

from models.settings import EngineSettings
from models.verdicts import FlagKind
from models.wire import GeoFix, PlaceCues
from server.campaigns.tables import CheckTask
from server.checks.tables import CheckResult
from server.evidence.place import PlaceChecker
from server.flags import service as flag_service
from server.flags.tables import Flag
from server.places.service import set_geofence
from server.places.tables import SceneEvidence
from server.settings import ServerSettings
from server.simulation.scenes import scene_jpeg
from tests.console.helpers import sign_in

HOSPITAL = (36.0671, 120.3826)
# Raw stored values that must never reach the page as such (codes, keys of the recorded details).
RAW = ("no_match", "place_score", "place_threshold", "wifi", "distance_m", "outside", "matched_bed_id",
       "place_mismatch", "bed_camera", "reference_id")


@pytest.fixture
def place_flag(county, engine):
    """The h1 impersonation check's scene replaced by one made elsewhere, checked and flagged as the evidence
    check does (server/evidence/service.py)."""
    server, world, flags = county
    h1 = world.hospital_ids[0]
    with Session(engine, expire_on_commit=False) as db:
        set_geofence(db, hospital_id=h1, lat=HOSPITAL[0], lon=HOSPITAL[1], radius_m=300, actor="test")
        flag = db.get(Flag, flags[(h1, "impersonated")])
        task = db.get(CheckTask, flag.task_id)
        result = db.get(CheckResult, task.result_id)
        scene = db.get(SceneEvidence, result.id)
        scene.scene_jpeg = scene_jpeg(task.bed_id, np.random.default_rng(5), at_home=True)
        scene.cues = PlaceCues(wifi_bssids=["12:34:56:78:9a:bc"],
                               location=GeoFix(lat=HOSPITAL[0] + 0.05, lon=HOSPITAL[1], accuracy_m=30)
                               ).model_dump(mode="json")
        db.add(scene)
        db.commit()
        outcome = PlaceChecker(ServerSettings(), EngineSettings()).check(db, result, task)
        assert outcome is not None and outcome.mismatch
        placed = flag_service.raise_flag(db, kind=FlagKind.PLACE_MISMATCH, hospital_id=h1,
                                         details=outcome.flag_details(result), task=task)
        db.add(outcome.apply())
        db.commit()
        return server, world, placed.id, outcome.score, outcome.threshold


def test_a_place_flag_shows_the_scene_beside_the_reference_with_its_score_in_words(place_flag) -> None:
    server, _, flag_id, score, threshold = place_flag
    with closing(sign_in(server.url, "rev")) as rev:
        page = rev.get(f"/console/flags/{flag_id}")
        assert page.status_code == 200
        html = page.text
        assert 'id="place-scene"' in html and 'id="place-reference"' in html
        assert "实地核验" in html and "实地不符" in html
        shown = re.search(r'id="place-score">([^<]*)<', html).group(1)
        assert shown == f"{score} 个（同一床位至少需要 {threshold} 个）"
        assert "与本病区所有床位参考图都不一致" in html
        cues = re.search(r'id="place-cues">(.*?)</td>', html, re.S).group(1)
        assert "附近 Wi-Fi 1 个，其中 0 个属于本病区" in cues or "本病区未登记 Wi-Fi" in cues
        assert "在地理围栏（半径 300 米）外" in cues and "网络定位" not in cues
        visible = re.sub(r"<[^>]+>", " ", html)  # the words on the page, not the markup's ids
        assert [raw for raw in RAW if raw in visible] == []
        for path in (f"/console/flags/{flag_id}/scene.jpg", f"/console/flags/{flag_id}/reference.jpg"):
            image = rev.get(path)
            assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg", path
            assert image.headers["cache-control"] == "no-store" and image.content[:2] == b"\xff\xd8"
        assert rev.get(f"/console/flags/{flag_id}/scene.jpg").content != rev.get(
            f"/console/flags/{flag_id}/reference.jpg").content
        package = rev.get(f"/console/exports/flags/{flag_id}/evidence.zip")
        assert package.headers["cache-control"] == "no-store"
        with zipfile.ZipFile(io.BytesIO(package.content)) as archive:
            assert {f"flag-{flag_id}/scene.jpg", f"flag-{flag_id}/bed_reference.jpg"} <= set(archive.namelist())


def test_scene_and_reference_reach_only_those_who_may_see_the_flag(place_flag) -> None:
    server, _, flag_id, _, _ = place_flag
    with closing(sign_in(server.url, "staff2")) as other, closing(sign_in(server.url, "staff1")) as own:
        for path in (f"/console/flags/{flag_id}", f"/console/flags/{flag_id}/scene.jpg",
                     f"/console/flags/{flag_id}/reference.jpg"):
            assert other.get(path).status_code == 404, path
        # The hospital's own staff may see its flag (the check's deadline has passed): the scene too.
        assert own.get(f"/console/flags/{flag_id}/scene.jpg").status_code == 200


def test_a_flag_without_a_scene_has_no_place_section(county) -> None:
    server, world, flags = county
    with closing(sign_in(server.url, "rev")) as rev:
        absent = rev.get(f"/console/flags/{flags[(world.hospital_ids[0], 'absent')]}")
        assert absent.status_code == 200 and 'id="place"' not in absent.text
        assert rev.get(f"/console/flags/{flags[(world.hospital_ids[0], 'absent')]}/scene.jpg").status_code == 404

