"""A software prefetch for compiled kernels: ask the CPU to bring an array element's cache
line in while the kernel works on earlier keys.

Kernels that walk keys in order and touch state at random places (a cache's sets) wait on a
cache miss per key; prefetching the state of a key a few keys ahead overlaps those waits. A
prefetch only hints: it never faults and changes no value, so results stay identical.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

READ, KEEP_IN_ALL_LEVELS, DATA = 0, 3, 1
"""``llvm.prefetch`` arguments: for a read, high temporal locality, data cache."""


@intrinsic
def prefetch(typingctx, array, index):
    """Hint that ``array[index]`` will be read soon (``llvm.prefetch``); no bounds check, as
    a prefetch of any address is harmless."""
    if not isinstance(array, types.Array) or not isinstance(index, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [args[1]],
                                           wraparound=False, boundscheck=False)
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        hint = builder.module.declare_intrinsic(      # named as this llvmlite's LLVM wants
            "llvm.prefetch", [byte_pointer],
            ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]))
        builder.call(hint, [builder.bitcast(pointer, byte_pointer), i32(READ),
                            i32(KEEP_IN_ALL_LEVELS), i32(DATA)])
        return context.get_dummy_value()

    return types.void(array, index), codegen
