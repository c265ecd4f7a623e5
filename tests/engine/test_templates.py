"""Templates, fused probes and the rule for who may join a template (models/faces/templates.py)."""

from __future__ import annotations

import numpy as np
import pytest

from models.faces.engines import SFACE, SYNTHETIC
from models.faces.match import Embeddings, person_distance
from models.faces.templates import (
    Frame,
    Member,
    fuse_probe,
    may_join,
    template_distance,
    template_of,
    template_with_captures,
    unit_rows,
)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _person(rng: np.random.Generator) -> np.ndarray:
    return _unit(rng.normal(size=128))


def _photo(person: np.ndarray, rng: np.random.Generator, spread: float = 0.6) -> np.ndarray:
    return _unit(person + rng.normal(scale=spread / np.sqrt(128), size=128))


def test_a_template_is_the_unit_mean_of_unit_embeddings_whatever_their_length() -> None:
    a, b = np.eye(128)[0] * 3.0, np.eye(128)[1] * 0.5
    template = template_of(np.stack([a, b]))
    assert np.linalg.norm(template) == pytest.approx(1.0)
    assert template[0] == pytest.approx(template[1]) == pytest.approx(1 / np.sqrt(2))
    weighted = template_of(np.stack([a, b]), weights=[3.0, 1.0])
    assert weighted[0] == pytest.approx(3 * weighted[1])
    with pytest.raises(ValueError):
        template_of(np.zeros((0, 128)))
    with pytest.raises(ValueError):
        template_of(np.stack([a, b]), weights=[1.0])


def test_two_photos_and_a_fused_probe_sit_nearer_the_person_than_one_photo_each() -> None:
    rng = np.random.default_rng(3)
    single, fused = [], []
    for _ in range(200):
        person = _person(rng)
        enrolled = np.stack([_photo(person, rng) for _ in range(2)])
        frames = np.stack([_photo(person, rng) for _ in range(3)])
        single.append(template_distance(enrolled[0], frames[0]))
        fused.append(person_distance(Embeddings.of(SFACE.tag, enrolled), Embeddings.of(SFACE.tag, frames)))
    assert np.median(fused) < 0.8 * np.median(single)


def test_a_probe_fuses_the_frames_that_show_the_crops_face_and_scores_each() -> None:
    rng = np.random.default_rng(5)
    person, stranger = _person(rng), _person(rng)
    template = template_of(np.stack([_photo(person, rng), _photo(person, rng)]))
    frames = [Frame("crop", _photo(person, rng)), Frame("neutral", _photo(person, rng)),
              Frame("blink", _photo(stranger, rng)), Frame("turn_left", None, "quality"), Frame("open_mouth", None)]
    fused = fuse_probe(frames, template, agreement=SFACE.burst_agreement)
    assert [(f.role, f.used, f.reason) for f in fused.frames] == [
        ("crop", True, "used"), ("neutral", True, "used"), ("blink", False, "disagrees"),
        ("turn_left", False, "quality"), ("open_mouth", False, "no_face")]
    assert fused.used == 2 and fused.vector is not None
    assert all(f.distance is not None for f in fused.frames[:3])
    expected = template_of(np.stack([frames[0].vector, frames[1].vector]))  # type: ignore[list-item]
    assert np.allclose(fused.vector, expected)
    assert fuse_probe([Frame("crop", None)], template, agreement=1.0).vector is None


def test_captures_never_outweigh_the_enrolled_photos() -> None:
    rng = np.random.default_rng(7)
    photos = [Member(_person(rng)) for _ in range(2)]
    captures = [Member(_person(rng), from_capture=True) for _ in range(5)]
    template = template_with_captures([*photos, *captures], max_captures=4)
    # Two photos: only the two newest captures count.
    expected = template_of(np.stack([photos[0].vector, photos[1].vector, captures[4].vector, captures[3].vector]))
    assert np.allclose(template, expected)
    with pytest.raises(ValueError):
        template_with_captures(captures, max_captures=4)


def _drift_attack(*, anchored: bool, engine_threshold: float, join_distance: float, steps: int = 40) -> bool:
    """An impostor admitted under a patient's name is verified when they look most like the patient (make-up,
    a lucky angle), then comes back, capture after capture, a little more themselves. Each verified capture
    joins if the rule allows. Returns whether the impostor's own face is finally verified."""
    rng = np.random.default_rng(11)
    patient, impostor = _person(rng), _person(rng)
    photos = [Member(_photo(patient, rng, 0.3)) for _ in range(2)]
    anchor = template_of(np.stack([m.vector for m in photos]))
    members = list(photos)
    for step in range(1, steps + 1):
        template = template_with_captures(members, max_captures=2) if anchored else template_of(
            np.stack([m.vector for m in members[-2:]]))
        # The attacker's capture: as far towards the impostor as still verifies against the current template.
        best = None
        for t in np.linspace(0, 1, 101):
            capture = _unit((1 - t) * template + t * impostor)
            if template_distance(template, capture) <= engine_threshold * 0.98:
                best = capture
        assert best is not None, f"step {step}"
        if anchored:
            decision = may_join(anchor, best, join_distance=join_distance, server_verified=True)
            if decision.joins:
                members.append(Member(best, from_capture=True))
        else:  # the naive rule: every verified capture joins, the newest replace the oldest
            members.append(Member(best, from_capture=True))
    final = template_with_captures(members, max_captures=2) if anchored else template_of(
        np.stack([m.vector for m in members[-2:]]))
    return template_distance(final, impostor) <= engine_threshold


@pytest.mark.parametrize("profile", [SFACE, SYNTHETIC], ids=lambda p: p.name.value)
def test_an_impostors_verified_captures_cannot_drift_the_template_to_their_face(profile) -> None:  # type: ignore[no-untyped-def]
    # Without the anchor rule the attack works: the template walks to the impostor in a few captures.
    assert _drift_attack(anchored=False, engine_threshold=profile.match, join_distance=profile.template_join)
    # With it, no number of captures gets the impostor's own face verified.
    assert not _drift_attack(anchored=True, engine_threshold=profile.match, join_distance=profile.template_join,
                             steps=200)


def test_only_a_capture_the_server_verified_near_the_anchor_may_join() -> None:
    rng = np.random.default_rng(13)
    patient = _person(rng)
    anchor = template_of(np.stack([_photo(patient, rng, 0.3), _photo(patient, rng, 0.3)]))
    close = _photo(patient, rng, 0.3)
    assert may_join(anchor, close, join_distance=SYNTHETIC.template_join, server_verified=True).joins
    refused = may_join(anchor, close, join_distance=SYNTHETIC.template_join, server_verified=False)
    assert not refused.joins and refused.reason == "not_server_verified"
    # Verified (within the match threshold) but not close: verified, never joined.
    near_threshold = _unit(anchor + rng.normal(size=128) * 0.052)
    assert SYNTHETIC.template_join < template_distance(anchor, near_threshold) <= SYNTHETIC.match
    far = may_join(anchor, near_threshold, join_distance=SYNTHETIC.template_join, server_verified=True)
    assert not far.joins and far.reason == "far_from_anchor"


def test_unit_rows_leaves_a_zero_row_zero() -> None:
    rows = unit_rows(np.stack([np.zeros(4), np.array([3.0, 4.0, 0, 0])]))
    assert np.allclose(rows[0], 0) and np.allclose(rows[1], [0.6, 0.8, 0, 0])
