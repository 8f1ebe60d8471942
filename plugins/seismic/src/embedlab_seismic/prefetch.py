"""``prefetch(array, index)``: a software prefetch usable inside numba kernels (llvm.prefetch).

The official Seismic code prefetches the forward-index entries of a block's documents before
scoring them; numba has no such call, so this intrinsic emits LLVM's (read, keep in all cache
levels). It is a hint only: results never depend on it.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic


@intrinsic
def prefetch(typingctx, array, index):  # type: ignore[no-untyped-def]
    """Hint the CPU to load the cache line holding ``array[index]``."""

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        array_type = signature.args[0]
        data = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, data, [args[1]])
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]),
            "llvm.prefetch." + byte_pointer.intrinsic_name)
        builder.call(function, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, index), codegen
