"""Synthetic 128-d face embeddings shaped like dlib's: unit-scale vectors, one identity per random
direction, photos of the same person scattered closely around it (distance ~0.3, different people ~1.4)."""

from __future__ import annotations

import numpy as np


def identity(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=128)
    return v / np.linalg.norm(v)


def photo_of(person: np.ndarray, rng: np.random.Generator, spread: float = 0.3) -> np.ndarray:
    """Another capture of the same face: Euclidean distance from `person` of about `spread`."""
    return person + rng.normal(scale=spread / np.sqrt(128), size=128)
