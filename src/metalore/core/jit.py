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
import re
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
# A function compiled from a file of this package is stamped with a digest of that file and of
# every core module it imports, directly or not (``from metalore.core.X import``, ``from
# metalore.core import X``), so an edit recompiles exactly the cached functions that may depend
# on it (an edit of ``state.py`` recompiles the kernels and the simulator's read-outs; one of
# ``simulator.py`` only the latter). The hook is numba's locator list
# (``CacheImpl._locator_classes``; ``_CacheImpl`` before numba 0.62), internal: should it move,
# importing still works, with a warning that says what to clear. tests/test_core_units.py checks
# that the hook is in place and that an edit of an imported file reaches a cached caller.

_CORE_DIR = Path(__file__).resolve().parent
_CACHE_IMPL: Any = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
_LOCATOR_BASE: Any = getattr(caching, "_CacheLocator", object)  # numba calls the four methods only
_CORE_IMPORT = re.compile(r"metalore\.core\.(\w+)|from\s+metalore\.core\s+import\s+\(?\s*([\w\s,]+)")


def _core_imports(name: str) -> set[str]:
    """Core modules that ``core/<name>.py`` names in an import (over-approximated: never misses one)."""
    found = set()
    for dotted, listed in _CORE_IMPORT.findall((_CORE_DIR / f"{name}.py").read_text(encoding="utf-8")):
        for module in [dotted] if dotted else re.split(r"[\s,]+", listed):
            if module and (_CORE_DIR / f"{module}.py").is_file():
                found.add(module)
    return found


@functools.cache
def core_sources_digest(name: str) -> str:
    """SHA-256 over ``core/<name>.py`` and every core module it imports, directly or not."""
    closure, todo = set(), [name]
    while todo:
        module = todo.pop()
        if module not in closure:
            closure.add(module)
            todo.extend(_core_imports(module))
    digest = hashlib.sha256()
    for module in sorted(closure):
        digest.update(module.encode() + b"\0" + (_CORE_DIR / f"{module}.py").read_bytes() + b"\0")
    return digest.hexdigest()


class _CoreSourcesLocator(_LOCATOR_BASE):
    """numba's own locator for a function of ``metalore.core``, with its imports' digest in the stamp."""

    def __init__(self, inner: Any, module: str) -> None:
        self._inner = inner
        self._module = module

    def ensure_cache_path(self) -> None:
        self._inner.ensure_cache_path()

    def get_cache_path(self) -> str:
        return str(self._inner.get_cache_path())

    def get_disambiguator(self) -> str:
        return str(self._inner.get_disambiguator())

    def get_source_stamp(self) -> Any:
        return (self._inner.get_source_stamp(), core_sources_digest(self._module))

    def __getattr__(self, name: str) -> Any:
        """Anything else numba reads of its locator (``_py_file`` when it warns that a function cannot be cached)."""
        if name == "_inner":  # not set yet: no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self._inner, name)

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> _CoreSourcesLocator | None:
        try:
            path = Path(py_file).resolve()
        except OSError:
            return None
        if path.parent != _CORE_DIR or path.suffix != ".py":
            return None
        for other in _CACHE_IMPL._locator_classes:
            if other is not cls:
                inner = other.from_function(py_func, py_file)
                if inner is not None:
                    return cls(inner, path.stem)
        return None


def install_cache_stamp() -> bool:
    """Put the core locator first in numba's list (idempotent), before any core module compiles.

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
