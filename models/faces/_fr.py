"""The one place that imports face_recognition: lazily, because the import loads four dlib models."""

from __future__ import annotations

import functools
import warnings
from types import ModuleType


@functools.cache
def face_recognition() -> ModuleType:
    with warnings.catch_warnings():
        # face_recognition_models still imports pkg_resources (setuptools is pinned below 81 for it).
        warnings.simplefilter("ignore")
        import face_recognition as module
    return module
