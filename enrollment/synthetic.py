"""Synthetic 128-d embeddings shaped like dlib's, for index tests and benchmarks.

Measured on 541 real dlib encodings of 300 LFW people (../shared/faces/lfw_dev): a large common offset
(the mean vector's norm is about 1.3), variance concentrated in few directions (10 of 128 hold ~47%, 40
hold ~87%), same-person distance ~0.44 and different-person distance ~0.83. Uniform random directions
(server/simulation/embeddings.py) put everyone ~1.4 apart, which flatters an ANN index.
"""

from __future__ import annotations

import numpy as np

DIM = 128
_DECAY_DIMS = 18.0  # eigenvalue i falls as exp(-i / 18): matches the measured cumulative spectrum
_BETWEEN_VARIANCE = 0.246  # trace: sets different-person distance ~0.83
_WITHIN_VARIANCE = 0.098  # trace: sets same-person distance ~0.44
_MEAN_NORM = 1.3


class SyntheticFaces:
    """Identity centres and photos of them; `seed` fixes the space (mean and principal directions)."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self._rng = rng
        self._basis, _ = np.linalg.qr(rng.normal(size=(DIM, DIM)))
        spectrum = np.exp(-np.arange(DIM) / _DECAY_DIMS)
        spectrum /= spectrum.sum()
        self._between_sd = np.sqrt(spectrum * _BETWEEN_VARIANCE)
        self._within_sd = np.sqrt(spectrum * _WITHIN_VARIANCE)
        mean = rng.normal(size=DIM)
        self._mean = mean / np.linalg.norm(mean) * _MEAN_NORM

    def identities(self, n: int) -> np.ndarray:
        """`n` people: float32 (n, 128) identity centres."""
        return self._draw(n, self._between_sd, self._mean)

    def photos_of(self, centres: np.ndarray) -> np.ndarray:
        """One new photo of each identity (same-person distance ~0.44 between two photos)."""
        return self._draw(len(centres), self._within_sd, centres)

    def _draw(self, n: int, sd: np.ndarray, around: np.ndarray) -> np.ndarray:
        out = np.empty((n, DIM), dtype=np.float32)
        for start in range(0, n, 100_000):
            stop = min(start + 100_000, n)
            z = self._rng.standard_normal((stop - start, DIM)) * sd
            base = around if around.ndim == 1 else around[start:stop]
            out[start:stop] = base + z @ self._basis.T
        return out
