"""Atomics for the thread pool (``core.pool``): fetch-and-add on one array element, and a spin hint.

``fetch_add(counters, i, value)`` (LLVM's ``atomicrmw add``, sequentially consistent; a ``lock
xadd`` on x86) lets the workers take the blocks of a batch from shared cursors (each steps its
own share first, then what is left of the others': ``kernels.step_share``), and carries the
pool's generation and acknowledgement counters. ``pause()`` goes in polling loops.
"""

from __future__ import annotations

import platform
from typing import Any

from llvmlite import ir
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


def _pause_typer(typingctx: Any) -> Any:
    """Typing and code generation of ``pause()``: x86's spin-wait hint, nothing elsewhere."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
            hint = builder.module.declare_intrinsic("llvm.x86.sse2.pause", fnty=ir.FunctionType(ir.VoidType(), []))
            builder.call(hint, [])
        return context.get_dummy_value()

    return types.none(), codegen


# Called from compiled code only, in a polling loop: tells the core that the thread spins (on
# x86 ``pause`` lets the other hardware thread run and avoids the memory-order flush at the
# loop's exit).
pause: Any = intrinsic(_pause_typer)
