"""The float32 arithmetic the numba attention kernels share (numba_attention.py, numba_decode.py): scores are kept
in log2 units (scale * log2(e) folded into the queries) so the softmax needs only exp2, done here branch-free so
LLVM vectorises the loops that call it."""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

_LOG2E = math.log2(math.e)
_MIN_EXP = np.float32(-126.0)  # exp2 of anything lower is flushed to ~1e-38; keeps the result a normal float
_NEG_BIG = np.float32(-1e30)  # initial running max; finite, since fastmath assumes no infinities. A row whose
# max never rises above it saw only -inf (or masked-out) scores.
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
_NAN = np.float32(np.nan)
# fastmath less 'nnan' and 'ninf': LLVM still reassociates and vectorises, but keeps tests for NaN and inf.
_IEEE_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}
# Degree-5 least-squares fit of 2^f on f in [-0.5, 0.5]; relative error 2.3e-7 (float32 rounding level).
_C0, _C1, _C2, _C3, _C4, _C5 = (
    np.float32(c)
    for c in (
        1.0000001192092896,
        0.6931469440460205,
        0.24022121727466583,
        0.05550742521882057,
        0.00967546459287405,
        0.0013266975292935967,
    )
)


@intrinsic
def _times_pow2(typingctx, p, n):
    """p * 2**n for float32 p (normal) and integral float32 n, by adding n to p's exponent bits."""
    sig = types.float32(types.float32, types.float32)

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        bits = builder.bitcast(args[0], i32)
        shift = builder.shl(builder.fptosi(args[1], i32), ir.Constant(i32, 23))
        return builder.bitcast(builder.add(bits, shift), ir.FloatType())

    return sig, codegen


@intrinsic
def _fmax(typingctx, a, b):
    """max of two float32 as llvm.maxnum: unlike max() or a compare-select, LLVM vectorises it as a reduction."""
    sig = types.float32(types.float32, types.float32)

    def codegen(context, builder, sig, args):
        f32 = ir.FloatType()
        fn = builder.module.declare_intrinsic("llvm.maxnum", [f32], ir.FunctionType(f32, [f32, f32]))
        return builder.call(fn, args, fastmath=("fast",))

    return sig, codegen


@numba.njit(fastmath=True, cache=True, inline="always")
def _exp2(x):
    """2**x for float32 x <= 0, branch-free so LLVM vectorises loops that call it (math.exp would not)."""
    x = _fmax(x, _MIN_EXP)
    n = np.floor(x + np.float32(0.5))
    f = x - n  # [-0.5, 0.5]
    p = _C0 + f * (_C1 + f * (_C2 + f * (_C3 + f * (_C4 + f * _C5))))
    return _times_pow2(p, n)
