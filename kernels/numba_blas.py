"""SciPy's OpenBLAS sgemm, callable from Numba nopython code with leading dimensions and beta.

np.dot in Numba takes contiguous arrays and overwrites its output; a kernel that reads a strided sub-matrix in
place or accumulates into its output needs the full BLAS call. This is that call, through the function pointer
SciPy exports for Cython (the same OpenBLAS that Numba's np.dot uses, so hetero.threads controls both).
"""

from __future__ import annotations

import llvmlite.binding as llvm
import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's OpenBLAS and its Cython function table)
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

NO_TRANS, TRANS = ord("N"), ord("T")  # values of transa / transb

# Bound by symbol name rather than as a ctypes pointer, so the kernels calling it stay cacheable (cache=True
# refuses functions holding a ctypes pointer); each process re-registers the name on import.
_SYMBOL = "hetero_scipy_sgemm"
llvm.add_symbol(_SYMBOL, get_cython_function_address("scipy.linalg.cython_blas", "sgemm"))


@intrinsic
def sgemm(typingctx, transa, transb, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """c = op(a) @ op(b) + beta * c, column-major as in BLAS: op(a) (m, k), op(b) (k, n), c (m, n).

    a, b, c are float32 arrays whose first element is the matrix's first element (slice them to offset);
    lda, ldb, ldc are the column strides in elements. Fortran takes every argument by pointer: the scalars go
    to stack slots made once per function, so a call in a loop allocates nothing."""
    sig = types.void(transa, transb, m, n, k, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, sig, args):
        i8, i32, f32 = ir.IntType(8), ir.IntType(32), ir.FloatType()

        def slot(ty, value):
            ptr = cgutils.alloca_once(builder, ty)
            builder.store(value, ptr)
            return builder.bitcast(ptr, i8.as_pointer())

        def data(i):
            return builder.bitcast(context.make_array(sig.args[i])(context, builder, args[i]).data, i8.as_pointer())

        def as_int(i, ty):
            return context.cast(builder, args[i], sig.args[i], types.int32 if ty is i32 else types.int8)

        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [i8.as_pointer()] * 13), _SYMBOL
        )
        ta, tb = slot(i8, as_int(0, i8)), slot(i8, as_int(1, i8))
        dims = [slot(i32, as_int(i, i32)) for i in (2, 3, 4, 6, 8, 11)]  # m, n, k, lda, ldb, ldc
        alpha = slot(f32, ir.Constant(f32, 1.0))
        beta = slot(f32, context.cast(builder, args[9], sig.args[9], types.float32))
        builder.call(
            fn, [ta, tb, dims[0], dims[1], dims[2], alpha, data(5), dims[3], data(7), dims[4], beta, data(10), dims[5]]
        )
        return context.get_dummy_value()

    return sig, codegen
