"""Frame sources: image folders in name order, video bursts with a stride and a start time, clear errors."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from edge_client.credentials import Credentials, NotPaired, load_credentials, save_credentials
from edge_client.sources import SourceError, open_source
from models.settings import EngineSettings
from tests.edge.conftest import HAMILTON, image_folder

SETTINGS = EngineSettings()


@pytest.mark.faces
def test_image_folder_gives_its_images_in_name_order(faces_dir, tmp_path) -> None:
    photos = sorted((faces_dir / "people" / "tony_blair").glob("*"))[:3]
    folder = image_folder(tmp_path, "bed", list(reversed(photos)))
    frames = open_source(folder, SETTINGS).burst(8, 3)
    assert len(frames) == 3 and all(f.shape == (250, 250, 3) and f.dtype == np.uint8 for f in frames)


@pytest.mark.faces
def test_unreadable_image_in_a_folder_is_a_dropped_frame(faces_dir, tmp_path) -> None:
    folder = image_folder(tmp_path, "bed", [faces_dir / "bad/empty.jpg", faces_dir / "people/tony_blair/01.jpg"])
    assert len(open_source(folder, SETTINGS).burst(8, 1)) == 1


@pytest.mark.faces
def test_video_burst_takes_every_nth_frame_from_the_requested_time(faces_dir) -> None:
    source = open_source(f"{faces_dir / HAMILTON}#t=2", SETTINGS)
    frames = source.burst(8, 3)
    source.close()
    assert len(frames) == 8 and frames[0].shape == (360, 640, 3)
    at_end = open_source(f"{faces_dir / HAMILTON}#t=9", SETTINGS)  # the clip is ~9.2 s long
    assert len(at_end.burst(8, 3)) < 8
    at_end.close()


@pytest.mark.parametrize("spec", ["/no/such/file.mp4", "rtsp://user:secret@127.0.0.1:1/none"])
def test_unopenable_source_is_a_clear_error_without_credentials(spec) -> None:
    with pytest.raises(SourceError) as error:
        open_source(spec, SETTINGS)
    assert "secret" not in str(error.value)


def test_bad_start_time_is_refused(tmp_path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not a video")
    with pytest.raises(SourceError, match="#t="):
        open_source(f"{clip}#t=soon", SETTINGS)


def test_credential_is_written_0600_and_refused_when_others_can_read_it(tmp_path) -> None:
    path = tmp_path / "state" / "credentials.json"
    creds = Credentials(server_url="http://s", device_id=1, token="t" * 20, hospital_id=1, ward_id=2)
    old = os.umask(0)
    try:
        save_credentials(path, creds)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and load_credentials(path) == creds
    path.chmod(0o644)
    with pytest.raises(NotPaired, match="chmod 600"):
        load_credentials(path)
    with pytest.raises(NotPaired, match="pair"):
        load_credentials(tmp_path / "missing.json")
