"""The in-memory window of recent captures the evidence check compares each new capture with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from server.evidence.recent import Capture, RecentCaptures

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _filled(n: int, rng: np.random.Generator) -> tuple[RecentCaptures, np.ndarray]:
    recent = RecentCaptures(timedelta(hours=24))
    vectors = rng.normal(0, 0.09, size=(n, 128)).astype(np.float32)  # about the spread of dlib encodings
    for i, vector in enumerate(vectors):
        recent.add(Capture(i, i, i % 7, i, T0 + timedelta(seconds=i)), vector)
    return recent, vectors


def test_nearest_is_the_exact_k_nearest_across_buffer_growth() -> None:
    rng = np.random.default_rng(3)
    recent, vectors = _filled(3000, rng)  # past the initial buffer of 1,024: grown twice
    for _ in range(20):
        query = vectors[rng.integers(len(vectors))] + rng.normal(0, 0.01, 128).astype(np.float32)
        expected = np.argsort(np.linalg.norm(vectors - query, axis=1))[:8]
        found = recent.nearest(query, k=8)
        assert [c.result_id for c, _ in found] == list(expected)
        assert np.allclose([d for _, d in found], np.linalg.norm(vectors[expected] - query, axis=1), atol=1e-6)


def test_a_replayed_capture_is_found_at_distance_zero_and_fewer_captures_than_k_are_all_returned() -> None:
    rng = np.random.default_rng(4)
    recent, vectors = _filled(5, rng)
    found = recent.nearest(vectors[2].astype(np.float64), k=8)
    assert len(found) == 5 and found[0][0].result_id == 2 and found[0][1] < 1e-6
    assert RecentCaptures(timedelta(hours=1)).nearest(vectors[0]) == []


def test_captures_older_than_the_window_are_forgotten_with_their_vectors() -> None:
    rng = np.random.default_rng(5)
    recent, vectors = _filled(100, rng)
    recent.window = timedelta(seconds=50)
    recent.forget_before(T0 + timedelta(seconds=99))  # keeps the captures of seconds 49..99
    assert [c.result_id for c in recent.captures] == list(range(49, 100))
    found = recent.nearest(vectors[60], k=1)
    assert found[0][0].result_id == 60 and found[0][1] < 1e-6
    assert all(c.result_id >= 49 for c, _ in recent.nearest(vectors[10], k=51))
