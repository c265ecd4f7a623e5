"""Matching policy and burst fusion on synthetic encodings."""

from __future__ import annotations

import numpy as np
import pytest

from models.faces.match import fuse_burst, match, person_distance


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=128)
    return v / np.linalg.norm(v)


def test_an_impostor_must_resemble_every_enrolled_photo() -> None:
    rng = np.random.default_rng(1)
    probe = _unit(rng)
    enrolled = np.stack([_unit(rng), probe + 0.01, _unit(rng)])
    assert not match(enrolled, probe, threshold=0.6).is_match
    genuine = np.stack([probe + 0.01, probe - 0.01])
    assert person_distance(genuine, probe) == pytest.approx(0.01 * np.sqrt(128), rel=1e-6)
    assert match(genuine, probe, threshold=0.2).is_match


def test_nothing_enrolled_never_matches() -> None:
    result = match(np.zeros((0, 128)), np.ones(128), threshold=0.6)
    assert not result.is_match and result.distance == float("inf")


def test_threshold_is_inclusive_and_reported() -> None:
    probe = np.zeros(128)
    enrolled = np.zeros((1, 128))
    enrolled[0, 0] = 0.5
    assert match(enrolled, probe, threshold=0.5).is_match
    assert not match(enrolled, probe, threshold=0.49).is_match


def test_burst_fusion_drops_frames_of_another_face() -> None:
    rng = np.random.default_rng(2)
    patient, visitor = _unit(rng), _unit(rng)
    frames = [patient + rng.normal(scale=0.004, size=128) for _ in range(4)] + [visitor]
    fused, used = fuse_burst(frames, agreement=0.3, min_frames=2)
    assert used == [0, 1, 2, 3]
    assert np.linalg.norm(fused - patient) < 0.05


def test_burst_abstains_when_too_few_frames_agree() -> None:
    rng = np.random.default_rng(3)
    fused, used = fuse_burst([_unit(rng), _unit(rng), _unit(rng)], agreement=0.3, min_frames=2)
    assert fused is None and used == []
