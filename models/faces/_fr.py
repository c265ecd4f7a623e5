"""The one place that imports face_recognition: lazily, because the import loads four dlib models."""

from __future__ import annotations

import functools
import importlib
import os
import warnings
from types import ModuleType


@functools.cache
def face_recognition() -> ModuleType:
    # dlib built against OpenBLAS (scripts/install_dlib.sh): one encoding is faster on one BLAS thread than
    # on two (15 vs 17 ms here), and our callers already run one process per core.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with warnings.catch_warnings():
        # face_recognition_models still imports pkg_resources (setuptools is pinned below 81 for it).
        warnings.simplefilter("ignore")
        return importlib.import_module("face_recognition")
