"""An atomic fetch-and-add on one array element, for the threaded step's work sharing.

numba's parallel loops hand out their iterations statically: with the OpenMP layer, each
thread gets a fixed, contiguous share, however many blocks the loop is cut into. On a
two-core machine that also runs the learner, a thread that is preempted held back its whole
share while the other idled. ``fetch_add(cursors, i, value)`` lets the threads take blocks
from shared cursors instead (LLVM's ``atomicrmw add``, sequentially consistent; a ``lock
xadd`` on x86): each thread steps its own share first, then what is left of the others'
(``kernels.step_envs_parallel``).
"""

from __future__ import annotations

from typing import Any

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array


def _fetch_add_typer(typingctx: Any, counters: Any, index: Any, value: Any) -> Any:
    """Typing and code generation of ``fetch_add(counters, index, value)`` on an int64 vector."""
    if not (isinstance(counters, types.Array) and counters.dtype == types.int64 and counters.ndim == 1):
        return None
    if not (isinstance(index, types.Integer) and isinstance(value, types.Integer)):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        counters_type, index_type, value_type = signature.args
        array = make_array(counters_type)(context, builder, args[0])
        position = context.cast(builder, args[1], index_type, types.intp)
        pointer = cgutils.get_item_pointer(context, builder, counters_type, array, [position], wraparound=False)
        increment = context.cast(builder, args[2], value_type, types.int64)
        return builder.atomic_rmw("add", pointer, increment, "seq_cst")

    return types.int64(counters, index, value), codegen


# Called from compiled code only: fetch_add(counters, i, value) -> counters[i] before adding value
# (no bounds check: i must be in range).
fetch_add: Any = intrinsic(_fetch_add_typer)
