"""`bedcheck faces liveness`: one JSON object a bureau can read; clips judged upright whatever their container
(a rotation tag, WebM under an .mp4 name); a still is never live; a clip that cannot be decoded is a clear
error (clip_unreadable), not a crash.

The test clips are made here from a real clip (../shared/faces/video_liveness) in tmp_path, never kept.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from models.faces.liveness.burst import read_burst
from models.settings import EngineSettings
from server.cli import app

pytestmark = [pytest.mark.faces, pytest.mark.slow]

runner = CliRunner()
# The start of the right turn of tran_real_headturns.mp4 (README: frontal 0-2.0 s, nose to image-right 2.0-5.8 s):
# mostly the neutral face, as a device films it (it stops once the action is done).
CLIP = "tran_real_headturns.mp4"
SECONDS = 3.5
FPS = 15.0


@pytest.fixture(scope="module")
def clip(faces_dir: Path) -> Path:
    path = faces_dir / "video_liveness" / CLIP
    if not path.exists():
        pytest.skip("../shared/faces/video_liveness not present")
    return path


@pytest.fixture(scope="module")
def upright(clip: Path) -> list[np.ndarray]:
    burst = read_burst(str(clip), EngineSettings(liveness_fps=FPS), max_s=SECONDS)
    return [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in burst.frames]


def _write(path: Path, frames: list[np.ndarray], fourcc: str) -> None:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


def _tag_rotation_90(path: Path) -> None:
    """Writes a 90-degree display matrix into the MP4's track header, as phones do for sideways frames."""
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    version = data[at + 4]
    matrix = at + 8 + (32 if version == 1 else 20) + 16
    data[matrix:matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))


def _liveness(source: Path | str, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["faces", "liveness", str(source), *args, "--json", "--time-limit", "0"],
                           env={"BEDCHECK_ENGINE_LIVENESS_FPS": str(FPS)})
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def test_json_answer_has_what_a_bureau_needs(clip: Path) -> None:
    code, answer = _liveness(f"{clip}", "--challenge", "turn_right", "--max-s", str(SECONDS))
    assert code == 0 and answer["is_live"] is True, answer
    for key in ("score", "actions", "residual", "reasons", "planarity"):
        assert key in answer
    (action,) = answer["actions"]
    assert action["action"] == "turn_right" and action["passed"] and 2.0 <= action["time_s"] <= SECONDS
    code, answer = _liveness(f"{clip}", "--challenge", "open_mouth", "--max-s", str(SECONDS))
    assert code == 1 and answer["is_live"] is False and "not_done:open_mouth" in answer["reasons"]


def test_a_sideways_clip_with_a_rotation_tag_is_judged_upright(upright: list[np.ndarray], tmp_path: Path) -> None:
    sideways = [cv2.rotate(f, cv2.ROTATE_90_COUNTERCLOCKWISE) for f in upright]
    untagged, tagged = tmp_path / "untagged.mp4", tmp_path / "tagged.mp4"
    _write(untagged, sideways, "mp4v")
    _write(tagged, sideways, "mp4v")
    _tag_rotation_90(tagged)
    code, answer = _liveness(tagged, "--challenge", "turn_right")
    assert code == 0 and answer["is_live"], answer
    # The control: the same pixels without the tag show a face lying on its side, which fails.
    assert _liveness(untagged, "--challenge", "turn_right")[1]["is_live"] is False


def test_webm_under_an_mp4_name_is_read_by_its_content(upright: list[np.ndarray], tmp_path: Path) -> None:
    webm = tmp_path / "clip.webm"
    _write(webm, upright, "VP80")
    disguised = webm.rename(tmp_path / "clip.mp4")
    assert disguised.read_bytes()[:4] == b"\x1aE\xdf\xa3"  # the EBML magic: WebM, whatever the name
    code, answer = _liveness(disguised, "--challenge", "turn_right")
    assert code == 0 and answer["is_live"], answer


def test_a_still_is_never_live(faces_dir: Path, tmp_path: Path) -> None:
    photo = faces_dir / "people" / "george_w_bush" / "01.jpg"
    code, answer = _liveness(photo, "--challenge", "blink")
    assert code == 1 and answer["is_live"] is False and "single_frame" in answer["reasons"]
    # The same photo as a ten-second "video": frames that never change do no action.
    image = cv2.imread(str(photo))
    still = tmp_path / "still.mp4"
    _write(still, [image] * int(10 * FPS), "mp4v")
    for challenge in ("blink", "turn_left", "look_up", "open_mouth"):
        assert _liveness(still, "--challenge", challenge)[1]["is_live"] is False


@pytest.mark.parametrize("content", [b"", b"not a video at all", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64])
def test_an_undecodable_clip_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(content)
    code, answer = _liveness(broken, "--challenge", "blink")
    assert code == 2 and answer["error"]["code"] == "clip_unreadable"


def test_an_unknown_action_is_refused() -> None:
    code, answer = _liveness("/nonexistent.mp4", "--challenge", "wave")
    assert code == 2 and answer["error"]["code"] == "invalid_input" and "wave" in answer["error"]["message"]
