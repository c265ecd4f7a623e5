"""The place check on real indoor scenes: the backgrounds of the clips in ../shared/faces/video*.

The same place seen again with other light, from a slightly moved camera or with a person in front must
pass; every other room must fail; a blank wall cannot be a reference. Frames are read at run time and
faces blurred first, as a device does; nothing is copied.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.faces.detect import detect_faces
from models.place.evaluation import OTHER_ROOMS, build_scene_set, evaluate, read_frames
from models.place.features import extract_features
from models.place.match import match_pair
from models.place.scene import scene_jpeg
from models.settings import EngineSettings
from server.settings import ServerSettings

pytestmark = pytest.mark.faces
SETTINGS = ServerSettings.model_construct()


@pytest.fixture(scope="module")
def find_faces():
    settings = EngineSettings()
    return lambda image: detect_faces(image, settings, thorough=False)


@pytest.fixture(scope="module")
def scene_set(faces_dir: Path, find_faces):
    built = build_scene_set(faces_dir, find_faces)
    if len(built.references) < 2:
        pytest.skip("the clips of the real-scene set are not in the face image folder")
    return built


def test_same_place_passes_under_other_light_a_moved_camera_and_a_person_in_front(scene_set) -> None:
    references, scenes = scene_set.features()
    threshold = SETTINGS.place_min_inliers
    failed = Counter()
    tried = Counter()
    for scene, features in zip(scene_set.scenes, scenes, strict=True):
        if scene.place in references:
            tried[scene.variant] += 1
            if match_pair(features, references[scene.place])[0] < threshold:
                failed[f"{scene.place}/{scene.variant}"] += 1
    assert {"dim", "bright", "moved", "occluded", "moved_dim_occluded", "later"} <= set(tried)
    assert not failed, f"genuine scenes below {threshold} inliers: {dict(failed)}"


def test_another_room_fails(scene_set) -> None:
    rates = evaluate(scene_set, SETTINGS.place_min_inliers)
    assert rates.impostor >= 100
    assert rates.false_matches == 0, f"another room reached the threshold ({rates.highest_impostor} inliers)"
    assert rates.false_mismatch_rate == 0.0


def test_a_hand_holding_a_phone_in_front_of_the_office_still_is_the_office(scene_set) -> None:
    """A real occluder: the second clip of the office has a hand and a phone in front of the camera."""
    references, _ = scene_set.features()
    phone = [s for s in scene_set.scenes if s.place == "office" and s.variant == "later"]
    assert len(phone) >= 4  # both office clips
    scores = [match_pair(extract_features(s.image), references["office"])[0] for s in phone]
    assert min(scores) >= SETTINGS.place_min_inliers


def test_a_blank_wall_is_too_plain_for_a_reference(faces_dir: Path, find_faces) -> None:
    plain = [c for c in OTHER_ROOMS if "tran_real" in c]  # a selfie before a bare wall
    counts = [len(extract_features(read_frames(faces_dir / c, (0.05,), find_faces)[0])) for c in plain
              if (faces_dir / c).is_file()]
    if not counts:
        pytest.skip("plain-wall clips not present")
    assert max(counts) < SETTINGS.reference_min_features


def test_the_scene_frame_shows_no_face(faces_dir: Path, find_faces) -> None:
    """What leaves the device: the face of the clip is found before blurring and not after."""
    frame = read_frames(faces_dir / "video_liveness/lestari_real_frontal.mp4", (0.5,), lambda image: [])[0]
    settings = EngineSettings()
    boxes = detect_faces(frame, settings)
    assert boxes, "the test frame should show a face"
    jpeg = scene_jpeg(frame, boxes)
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert max(decoded.shape[:2]) <= 480
    assert detect_faces(np.ascontiguousarray(decoded), settings) == []
