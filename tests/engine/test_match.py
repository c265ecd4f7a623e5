"""Matching policy, engine tags, open-set identification and burst fusion on synthetic encodings."""

from __future__ import annotations

import numpy as np
import pytest

from models.errors import EngineMismatch, UnknownEngine
from models.faces.engines import DLIB, SFACE, identification_threshold, profile_for_tag
from models.faces.match import Embeddings, fuse_burst, identify, match, person_distance

T = "test-engine"


def E(vectors, engine: str = T) -> Embeddings:  # noqa: N802
    return Embeddings.of(engine, vectors)


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=128)
    return v / np.linalg.norm(v)


def test_an_impostor_must_resemble_the_template_not_one_enrolled_photo() -> None:
    rng = np.random.default_rng(1)
    probe = _unit(rng)
    enrolled = np.stack([_unit(rng), probe + 0.01, _unit(rng)])
    assert not match(E(enrolled), E(probe), threshold=0.6).is_match
    # Two photos either side of the probe (an offset at right angles): their template is the probe's direction.
    offset = _unit(rng)
    offset = 0.3 * _unit_vector(offset - offset @ probe * probe)
    genuine = np.stack([probe + offset, probe - offset])
    assert person_distance(E(genuine), E(probe)) == pytest.approx(0.0, abs=1e-9)
    assert match(E(genuine), E(probe), threshold=0.01).is_match


def _unit_vector(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def test_nothing_enrolled_never_matches() -> None:
    result = match(E(np.zeros((0, 128))), E(np.ones(128)), threshold=0.6)
    assert not result.is_match and result.distance == float("inf")


def test_threshold_is_inclusive_and_reported() -> None:
    # Two unit vectors at 60 degrees are exactly 1.0 apart.
    probe = np.zeros(128)
    probe[0] = 1.0
    enrolled = np.zeros((1, 128))
    enrolled[0, 0], enrolled[0, 1] = 0.5, np.sqrt(3) / 2
    distance = match(E(enrolled), E(probe), threshold=1.0).distance
    assert distance == pytest.approx(1.0)
    assert match(E(enrolled), E(probe), threshold=distance).is_match
    assert not match(E(enrolled), E(probe), threshold=distance - 1e-9).is_match
    assert match(E(enrolled), E(probe), threshold=0.5).threshold == 0.5


def test_embeddings_of_two_engines_are_never_compared() -> None:
    same_numbers = np.ones((1, 128))
    with pytest.raises(EngineMismatch):
        person_distance(E(same_numbers, SFACE.tag), E(same_numbers[0], DLIB.tag))
    with pytest.raises(EngineMismatch):
        match(E(same_numbers, SFACE.tag), E(same_numbers[0], DLIB.tag), threshold=2.0)
    with pytest.raises(EngineMismatch):
        identify({1: E(same_numbers, DLIB.tag)}, E(same_numbers[0], SFACE.tag), threshold=2.0, margin=0.0)


def test_an_unknown_engine_tag_is_refused() -> None:
    assert profile_for_tag(SFACE.tag) is SFACE
    with pytest.raises(UnknownEngine):
        profile_for_tag("made-up-engine/9")


def test_identification_threshold_shrinks_with_the_gallery_and_never_exceeds_the_match_one() -> None:
    small, county, province = (identification_threshold(SFACE, n) for n in (10, 5_000, 1_500_000))
    assert small <= SFACE.match
    assert small >= county > province
    assert identification_threshold(DLIB, 1) <= DLIB.match


def test_identify_names_only_a_clear_winner_under_the_threshold() -> None:
    rng = np.random.default_rng(7)
    a, b = _unit(rng), _unit(rng)
    gallery = {"a": E(np.stack([a, a + 0.01])), "b": E(b)}
    named = identify(gallery, E(a + 0.02), threshold=0.5, margin=0.05)
    assert named.named == "a" and named.reason == "named"
    stranger = identify(gallery, E(_unit(rng)), threshold=0.5, margin=0.05)
    assert stranger.named is None and stranger.reason == "above_threshold"
    twins = {"a": E(a), "a2": E(a + 0.001)}
    tie = identify(twins, E(a + 0.02), threshold=0.5, margin=0.05)
    assert tie.named is None and tie.reason == "not_clearly_ahead"
    assert identify({}, E(a), threshold=0.5, margin=0.05).reason == "no_candidate"


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
