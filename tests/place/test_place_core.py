"""The place core without real images: features storage, the match on synthetic rooms, cues, wire checks."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from models.faces.decode import decode_image
from models.faces.detect import Box
from models.place.cues import distance_m, outside_geofence, wifi_cue
from models.place.features import SceneFeatures, extract_features
from models.place.match import match_pair, match_scene
from models.place.scene import blur_faces
from models.settings import EngineSettings
from models.wire import PlaceCues
from server.settings import ServerSettings
from server.simulation.scenes import reference_jpeg, render_room, scene_jpeg

THRESHOLD = ServerSettings.model_construct().place_min_inliers
LIMITS = EngineSettings()


def _features(jpeg: bytes) -> SceneFeatures:
    return extract_features(decode_image(jpeg, LIMITS))


def test_packed_features_read_back_the_same() -> None:
    features = extract_features(render_room(3))
    again = SceneFeatures.unpack(features.pack())
    assert len(again) == len(features) > 500
    assert np.array_equal(again.descriptors, features.descriptors)
    assert np.allclose(again.points, features.points)
    with pytest.raises(ValueError):
        SceneFeatures.unpack(b"JUNK" + features.pack()[4:])


def test_a_blank_frame_has_no_features_and_matches_nothing() -> None:
    blank = extract_features(np.full((360, 480, 3), 200, np.uint8))
    assert len(blank) == 0
    assert match_pair(blank, extract_features(render_room(1))) == (0, 0)


def test_a_synthetic_bed_seen_again_passes_and_the_home_it_was_carried_to_fails() -> None:
    rng = np.random.default_rng(9)
    for bed_id in range(1, 13):
        reference = _features(reference_jpeg(bed_id))
        assert match_pair(_features(scene_jpeg(bed_id, rng)), reference)[0] >= THRESHOLD
        assert match_pair(_features(scene_jpeg(bed_id, rng, at_home=True)), reference)[0] < THRESHOLD


def test_the_best_reference_is_found_and_the_search_stops_at_a_clear_match() -> None:
    rng = np.random.default_rng(2)
    references = [_features(reference_jpeg(b)) for b in (11, 12, 13)]
    found = match_scene(_features(scene_jpeg(12, rng)), references, enough=2 * THRESHOLD)
    assert found.reference_index == 1 and found.score >= 2 * THRESHOLD
    assert match_scene(_features(scene_jpeg(12, rng)), []).reference_index == -1


def test_blurring_replaces_the_face_region_and_nothing_else() -> None:
    image = render_room(5)
    box = Box(top=100, right=260, bottom=200, left=180)
    blurred = blur_faces(image, [box], margin=0.0)
    assert not np.array_equal(blurred[100:200, 180:260], image[100:200, 180:260])
    # A 4x4 mosaic smoothed: the region has almost no detail left.
    assert blurred[100:200, 180:260].std(axis=(0, 1)).max() < image[100:200, 180:260].std(axis=(0, 1)).max()
    assert np.array_equal(blurred[:90], image[:90])


def test_wifi_and_location_cues() -> None:
    cue = wifi_cue(["aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02", "11:22:33:44:55:66"],
                   ["aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02", "aa:bb:cc:00:00:03"])
    assert (cue.seen, cue.known, cue.enrolled) == (3, 2, 3) and cue.overlap == pytest.approx(2 / 3)
    assert wifi_cue([], ["aa:bb:cc:00:00:01"]).overlap is None
    # Two points in Qingdao about 1.1 km apart (0.01 degree of latitude).
    d = distance_m(36.10, 120.40, 36.11, 120.40)
    assert 1100 < d < 1120
    assert outside_geofence(d, accuracy_m=50, radius_m=300)
    assert not outside_geofence(d, accuracy_m=900, radius_m=300)  # a poor fix cannot say


def test_bssids_are_normalised_and_junk_is_refused() -> None:
    assert PlaceCues(wifi_bssids=["AA-BB-CC-00-00-01", "aa:bb:cc:00:00:01"]).wifi_bssids == ["aa:bb:cc:00:00:01"]
    with pytest.raises(ValidationError):
        PlaceCues(wifi_bssids=["not a bssid"])


def test_a_frame_too_small_for_orb_has_no_features_not_an_error() -> None:
    for shape in ((1, 1, 3), (40, 600, 3), (63, 63, 3)):
        assert len(extract_features(np.full(shape, 128, np.uint8))) == 0
