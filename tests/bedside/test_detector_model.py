"""The bedside app's detector is the server's YuNet with its weights expanded to float: the same detections."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.faces.model_files import YUNET, read_verified
from server.bedside.detector_model import browser_detector_bytes


def _detect(model: bytes, image: np.ndarray) -> np.ndarray:
    detector = cv2.FaceDetectorYN.create("onnx", bytearray(model), bytearray(), (640, 640), 0.6, 0.3, 5000)
    found = detector.detect(image)[1]
    return np.zeros((0, 15)) if found is None else found


def test_any_input_size_a_multiple_of_32_runs() -> None:
    net = cv2.dnn.readNetFromONNX(np.frombuffer(browser_detector_bytes(), np.uint8))
    for side in (320, 640):
        net.setInput(np.zeros((1, 3, side, side), np.float32))
        names = net.getUnconnectedOutLayersNames()
        outputs = dict(zip(names, net.forward(names), strict=True))
        assert outputs["cls_8"].shape[1] == (side // 8) ** 2


def test_no_block_quantisation_is_left() -> None:
    import onnx

    model = onnx.load_from_string(browser_detector_bytes())
    assert not [n for n in model.graph.node if n.op_type == "DequantizeLinear"]


def test_a_faceless_image_has_no_face_in_either_model() -> None:
    image = np.full((640, 640, 3), 128, np.uint8)
    cv2.rectangle(image, (100, 100), (500, 400), (30, 60, 200), -1)
    assert len(_detect(browser_detector_bytes(), image)) == len(_detect(read_verified(YUNET), image)) == 0


@pytest.mark.faces
def test_the_same_faces_as_the_servers_detector(faces_dir: Path) -> None:
    people = sorted((faces_dir / "people").iterdir())[:6]
    compared = 0
    for person in people:
        photo = sorted(person.glob("*.jp*g"))[0]
        image = cv2.resize(cv2.imread(str(photo)), (640, 640))
        ours, servers = _detect(browser_detector_bytes(), image), _detect(read_verified(YUNET), image)
        assert len(ours) == len(servers)
        if len(ours):
            assert np.abs(ours[:, :14] - servers[:, :14]).max() < 1.0
            compared += 1
    assert compared >= 3
