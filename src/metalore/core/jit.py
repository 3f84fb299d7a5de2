"""Compilation options of the step path (``core.kernels`` and the draws of ``core.rng``).

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

from typing import Any

STEP_PATH: dict[str, Any] = {"cache": True, "_nrt": False}
