"""The Face Mesh landmark backend (models/faces/liveness/mesh.py): its model file is read from the mediapipe
wheel without importing mediapipe and refused when altered; its 468 points, mapped to the 68-point layout, sit
where an independent detector (YuNet's five points) puts the eyes, nose and mouth on real faces; an image with
no face gives no landmarks."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.errors import ModelFileAltered, ModelFileMissing, ReasonCode
from models.faces import sface
from models.faces.decode import RGBImage, load_image_file
from models.faces.detect import Box
from models.faces.liveness.burst import read_burst
from models.faces.liveness.geometry import eye_aspect_ratio, inter_ocular, mouth_aspect_ratio
from models.faces.liveness.mesh import MESH_TO_68, MeshLandmarker, fit_mesh
from models.faces.model_files import FACE_MESH, mesh_model_path, read_verified_file
from models.settings import EngineSettings

SETTINGS = EngineSettings()


def test_the_installed_mesh_model_passes_its_sha256() -> None:
    data = read_verified_file(FACE_MESH, mesh_model_path())
    assert len(data) == FACE_MESH.size_bytes and hashlib.sha256(data).hexdigest() == FACE_MESH.sha256


def test_a_corrupted_copy_of_the_mesh_model_is_refused_with_a_reason_code(tmp_path: Path) -> None:
    original = bytearray(mesh_model_path().read_bytes())
    original[len(original) // 3] ^= 0x01  # one bit flipped
    copy = tmp_path / FACE_MESH.name
    copy.write_bytes(bytes(original))
    with pytest.raises(ModelFileAltered) as caught:
        read_verified_file(FACE_MESH, copy)
    assert caught.value.code == ReasonCode.MODEL_ALTERED and caught.value.http_status == 503
    assert caught.value.details["model"] == FACE_MESH.name
    with pytest.raises(ModelFileMissing) as missing:
        read_verified_file(FACE_MESH, tmp_path / "absent.tflite")
    assert missing.value.code == ReasonCode.MODEL_MISSING


def test_mediapipe_is_never_imported() -> None:
    """mediapipe is installed without its dependencies: only its file is read, by a fresh interpreter here."""
    code = ("import sys, numpy as np; from models.faces.liveness.mesh import MeshLandmarker, load_model; "
            "from models.settings import EngineSettings; load_model(); "
            "MeshLandmarker(EngineSettings()).detect(np.zeros((64, 64, 3), np.uint8)); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'mediapipe'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_mapping_names_68_distinct_mesh_points() -> None:
    assert len(MESH_TO_68) == 68 and len(set(MESH_TO_68)) == 68 and all(0 <= i < 468 for i in MESH_TO_68)


@pytest.mark.parametrize("image", [
    np.full((480, 640, 3), 128, np.uint8),
    np.random.default_rng(7).integers(0, 256, (480, 640, 3), dtype=np.uint8),
    np.tile(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], (480, 1, 3)),
], ids=["grey", "noise", "gradient"])
def test_an_image_without_a_face_has_no_face_and_no_landmarks(image: RGBImage) -> None:
    landmarker = MeshLandmarker(SETTINGS)
    assert landmarker.detect(image) is None
    assert landmarker.detect(image, near=Box(100, 400, 400, 100)) is None
    # Even handed a box, the mesh's face-presence score refuses to place a face on it.
    assert landmarker.landmarks(image, Box(100, 400, 400, 100)) is None


def _clip_frame(faces_dir: Path, name: str, at_s: float) -> RGBImage:
    path = faces_dir / "video_liveness" / name
    if not path.exists():
        pytest.skip(f"{name} not present")
    burst = read_burst(str(path), SETTINGS)
    return burst.frames[int(np.argmin(np.abs(np.asarray(burst.times_s) - at_s)))]


def _faces(faces_dir: Path) -> list[RGBImage]:
    images = [load_image_file(p, SETTINGS) for p in sorted((faces_dir / "people").glob("*/01.jpg"))]
    if not images:
        pytest.skip("../shared/faces/people has no images")
    return images


@pytest.mark.faces
def test_mapped_points_sit_where_yunet_puts_the_eyes_nose_and_mouth(faces_dir: Path) -> None:
    """YuNet's five points (a different network) against the mapped 68: eye centres, nose tip, mouth corners."""
    landmarker = MeshLandmarker(SETTINGS)
    errors = []
    for image in _faces(faces_dir):
        found = sface.detect(image, SETTINGS)
        box = landmarker.detect(image)
        assert found and box is not None
        points = landmarker.landmarks(image, box)
        assert points is not None and points.shape == (68, 2)
        five = found[0].points.astype(np.float64)
        unit = inter_ocular(points)
        assert 0.2 * box.width < unit < 0.8 * box.width
        ours = np.array([points[36:42].mean(axis=0), points[42:48].mean(axis=0), points[30], points[48],
                         points[54]])
        errors.append(np.linalg.norm(ours - five, axis=1) / unit)
        # The layout's order: image-left eye left of the other, eyes above the nose tip above the mouth.
        assert points[39, 0] < points[42, 0] and points[36:48, 1].mean() < points[30, 1] < points[60:68, 1].mean()
    # In inter-ocular distances. YuNet's int8 points are rough on turned heads (checked by eye: on a face turned
    # 40 degrees it put an eye on its corner, 0.2 off); a point mapped to a neighbour (a brow for an eye, a lip
    # corner's neighbour, the nostril for the tip) is 0.25-0.4 off on every face, which the median shows.
    table = np.array(errors)
    assert len(table) >= 5
    assert (np.median(table, axis=0) < 0.15).all() and (table < 0.35).all(), np.round(table, 2)


@pytest.mark.faces
def test_eye_and_mouth_ratios_on_known_frames(faces_dir: Path) -> None:
    """liveportrait_d18 (README timeline): neutral at 0.3 s, the mouth wide open at 2.6 s, a blink at 3.18 s."""
    name = "liveportrait_d18_mouth_open.mp4"
    landmarker = MeshLandmarker(SETTINGS)
    ratios = {}
    for label, at_s in (("neutral", 0.3), ("open", 2.6)):
        image = _clip_frame(faces_dir, name, at_s)
        box = landmarker.detect(image)
        assert box is not None
        points = landmarker.landmarks(image, box)
        assert points is not None
        ratios[label] = (eye_aspect_ratio(points), mouth_aspect_ratio(points))
    assert 0.18 < ratios["neutral"][0] < 0.4 and ratios["neutral"][1] < 0.1, ratios
    assert ratios["open"][1] > ratios["neutral"][1] + SETTINGS.mouth_open_delta, ratios


@pytest.mark.faces
@pytest.mark.parametrize("degrees", [30.0, -40.0])
def test_a_rolled_head_is_fitted_upright(faces_dir: Path, degrees: float) -> None:
    """A patient's head on a pillow: the image turned in its plane gives the eye ratio of the upright face."""
    image = _clip_frame(faces_dir, "liveportrait_d18_mouth_open.mp4", 0.3)
    landmarker = MeshLandmarker(SETTINGS)
    upright_box = landmarker.detect(image)
    assert upright_box is not None
    upright = fit_mesh(image, upright_box).points68
    height, width = image.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), degrees, 1.0)
    rolled = cv2.warpAffine(image, turn, (width, height))
    box = landmarker.detect(rolled)
    assert box is not None
    points = landmarker.landmarks(rolled, box)
    assert points is not None
    eye_line = points[45] - points[36]
    assert abs(np.degrees(np.arctan2(eye_line[1], eye_line[0])) + degrees) < 8.0
    assert abs(eye_aspect_ratio(points) / eye_aspect_ratio(upright) - 1.0) < 0.2


def test_dlib_landmarks_are_read_only_by_the_dlib_engine() -> None:
    """dlib's 68-point predictor (iBUG 300-W, non-commercial terms) is called in one place, the dlib engine's
    `landmarks68`; every liveness path takes `default_landmarker` (Face Mesh)."""
    root = Path(__file__).resolve().parents[2]
    allowed = {root / "models" / "faces" / "engine.py", root / "scripts" / "bench_dlib.py"}
    callers = [path.relative_to(root).as_posix()
               for folder in ("models", "server", "edge_client", "enrollment", "scripts")
               for path in (root / folder).rglob("*.py")
               if "face_landmarks(" in path.read_text(encoding="utf-8") and path not in allowed]
    assert callers == []
    from models.faces.liveness.track import default_landmarker

    assert isinstance(default_landmarker(SETTINGS), MeshLandmarker)
