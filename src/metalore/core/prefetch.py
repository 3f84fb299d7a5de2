"""A software prefetch of one array element, for the step kernel's large batches.

With a thousand environments, the records at the heads of the queues were written tens of
steps earlier and have long left the caches; reading them stalls the step on main memory.
``prefetch(array, index)`` asks the CPU to start loading the cache line of ``array[index]``
(LLVM's ``llvm.prefetch``, e.g. ``prefetcht0`` on x86) and returns at once, so the step of
environment ``b`` can announce what environment ``b + 1`` will touch. It is a hint only: it
never faults, changes no value, and compiles to nothing on a target without prefetch.
"""

from __future__ import annotations

from typing import Any

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

# llvm.prefetch(address, rw, locality, cache type): read access, keep in all cache levels, data cache.
_READ, _HIGH_LOCALITY, _DATA_CACHE = 0, 3, 1


def _prefetch_typer(typingctx: Any, array: Any, index: Any) -> Any:
    """Typing and code generation of ``prefetch(array, index)``; ``index`` is a tuple of integers, one per axis."""
    if not isinstance(array, types.Array) or not isinstance(index, types.UniTuple | types.Tuple):
        return None
    if len(index) != array.ndim or not all(isinstance(i, types.Integer) for i in index.types):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array_type, index_type = signature.args
        arr = make_array(array_type)(context, builder, args[0])
        indices = [
            context.cast(builder, value, value_type, types.intp)
            for value, value_type in zip(
                cgutils.unpack_tuple(builder, args[1], len(index_type)), index_type, strict=True
            )
        ]
        pointer = cgutils.get_item_pointer(context, builder, array_type, arr, indices, wraparound=False)
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function_type = ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32])
        function = cgutils.get_or_insert_function(builder.module, function_type, "llvm.prefetch")
        flags = [ir.Constant(i32, v) for v in (_READ, _HIGH_LOCALITY, _DATA_CACHE)]
        builder.call(function, [builder.bitcast(pointer, byte_pointer), *flags])
        return context.get_dummy_value()

    return types.void(array, index), codegen


# Called from compiled code only: prefetch(array, (i, j, ...)) -> None.
prefetch: Any = intrinsic(_prefetch_typer)
