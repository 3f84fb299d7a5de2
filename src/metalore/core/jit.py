"""Compilation options of the step path (``core.kernels`` and the draws of ``core.rng``), and the cache's stamp.

DECISION: the functions a step runs are compiled without numba's runtime (NRT, the private
``_nrt=False`` option). With the runtime on, numba brackets array arguments and locals with
atomic reference-count updates on the arrays' shared ``MemInfo``; the step of the paper
scenario made ~800 of them per env-step (callgrind), a third of the serial step time, and
with threads both cores fight over the same reference counts. The step path never allocates
or returns an array, so it needs no runtime: an allocation added there fails to compile
("NRT required") instead of silently bringing the cost back. Episode start (``_init_one``)
keeps the runtime (it allocates scratch and runs once per episode). Should numba drop the
option, removing ``"_nrt": False`` here restores the default at the old speed.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from pathlib import Path
from typing import Any

import numba
from numba.core import caching

STEP_PATH: dict[str, Any] = {"cache": True, "_nrt": False}


# ----------------------------------------------------------------- the cache's source stamp
# DECISION: numba keys a cached function on the contents of its own file only. The step kernel
# inlines functions and module constants from its siblings (``channel``, ``rng``, ``state``,
# ``atomic``, ``prefetch``, this file), so an edit there left the cached kernel in place and the
# old code ran without a word (measured: a changed Okumura-Hata constant gave the same episode).
# Every function compiled from this package is stamped with a digest of all of the package's
# sources as well, so any edit here recompiles the lot once. The hook is numba's locator list
# (``CacheImpl._locator_classes``; ``_CacheImpl`` before numba 0.62), internal: should it move,
# importing still works, with a warning that says what to clear. tests/test_core_units.py checks
# that the hook is in place and that an edit of a sibling file reaches a cached caller.

_CORE_DIR = Path(__file__).resolve().parent
_CACHE_IMPL: Any = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)


@functools.cache
def core_sources_digest() -> str:
    """SHA-256 over the names and contents of the ``metalore.core`` sources (``*.py``)."""
    digest = hashlib.sha256()
    for path in sorted(_CORE_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\\0" + path.read_bytes() + b"\\0")
    return digest.hexdigest()


class _CoreSourcesLocator(caching._CacheLocator):
    """numba's own locator for a function of ``metalore.core``, with the package digest in its stamp."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def ensure_cache_path(self) -> None:
        self._inner.ensure_cache_path()

    def get_cache_path(self) -> str:
        return str(self._inner.get_cache_path())

    def get_disambiguator(self) -> str:
        return str(self._inner.get_disambiguator())

    def get_source_stamp(self) -> Any:
        return (self._inner.get_source_stamp(), core_sources_digest())

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> _CoreSourcesLocator | None:
        try:
            inside = Path(py_file).resolve().parent == _CORE_DIR
        except OSError:
            return None
        if not inside:
            return None
        for other in _CACHE_IMPL._locator_classes:
            if other is not cls:
                inner = other.from_function(py_func, py_file)
                if inner is not None:
                    return cls(inner)
        return None


def install_cache_stamp() -> bool:
    """Put the package-digest locator first in numba's list (idempotent); before any core module compiles.

    Returns whether it is in place.
    """
    classes = getattr(_CACHE_IMPL, "_locator_classes", None)
    if not isinstance(classes, list):
        warnings.warn(
            f"numba {numba.__version__} has no cache locator list: a cached metalore kernel is keyed on its own"
            " file only, so after editing another file of metalore/core delete metalore/core/__pycache__",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    if _CoreSourcesLocator not in classes:
        classes.insert(0, _CoreSourcesLocator)
    return True
