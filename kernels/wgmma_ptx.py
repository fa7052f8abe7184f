"""CUDA C text of the Hopper warpgroup MMA helpers (sm_90a), for the kernels that use wgmma
(kernels/attention/flash_attention_sm90.cu). Generated because each instruction shape lists every accumulator
register as its own asm operand (N / 2 floats a thread for an m64nN tile); tests/cuda_warp_shim.h defines the
same functions for the host emulation.

    wgmma_ss<N, BF16>(d, desc_a, desc_b)   d (64 x N, f32) += A (64 x 16, shared) * B (16 x N, shared)
    wgmma_rs<N, BF16>(d, a, desc_b)        the same with A from registers: a[4], mma.sync's A fragment layout
    wgmma_fence() / wgmma_commit() / wgmma_wait<W>(regs)   the async group protocol; wgmma_wait ends with an empty
        asm on each listed register, so the compiler reads them only after the wait; reg_fence(a) after the wait
        keeps a register A operand from being reused while the tensor cores may still read it
    fence_proxy_async()                    shared memory written by ordinary stores or cp.async, read next by wgmma

Operands are 16-bit (BF16 = 0: float16, 1: bfloat16), both K-major (imm-trans 0), scale-d 1 (accumulate).
Accumulator layout (PTX ISA, wgmma D, f32): warp w of the warpgroup owns rows 16w..16w+15; with g = lane / 4,
t = lane % 4, d[4j + e] = D[16w + g + 8 * (e / 2)][8j + 2t + e % 2], as mma.sync's C repeated every 8 columns.
"""

from __future__ import annotations

_PROTOCOL = r"""
typedef unsigned long long u64;
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
template <int W, int R>
__device__ __forceinline__ void wgmma_wait(float (&regs)[R]) {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" :: "n"(W) : "memory");
    #pragma unroll
    for (int i = 0; i < R; ++i) asm volatile("" : "+f"(regs[i]) :: "memory");
}
template <int R>   // keeps registers a wgmma reads (register A fragments) live until this point
__device__ __forceinline__ void reg_fence(unsigned (&regs)[R]) {
    #pragma unroll
    for (int i = 0; i < R; ++i) asm volatile("" : "+r"(regs[i]) :: "memory");
}
template <int N, int BF16> __device__ void wgmma_ss(float (&d)[N / 2], u64 desc_a, u64 desc_b);
template <int N, int BF16> __device__ void wgmma_rs(float (&d)[N / 2], const unsigned (&a)[4], u64 desc_b);
"""


def _wrapper(n: int, bf16: int, kind: str) -> str:
    """One specialization: wgmma.mma_async in a scope of its own, scale-d a predicate set true (D += A * B).
    Operands: %0..%(N/2 - 1) the accumulators, then A (a descriptor, or 4 registers), then B's descriptor."""
    k = n // 2
    ty = "bf16" if bf16 else "f16"
    regs = "{" + ", ".join(f"%{i}" for i in range(k)) + "}"
    binds = ", ".join(f'"+f"(d[{i}])' for i in range(k))
    if kind == "ss":
        sig, a_op, b_op, scales, ins = "u64 da, u64 db", f"%{k}", f"%{k + 1}", "1, 1, 0, 0", '"l"(da), "l"(db)'
    else:
        sig, b_op, scales = "const unsigned (&a)[4], u64 db", f"%{k + 4}", "1, 1, 0"
        a_op = "{" + ", ".join(f"%{k + i}" for i in range(4)) + "}"
        ins = '"r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db)'
    return (
        f"template <> __device__ __forceinline__ void wgmma_{kind}<{n}, {bf16}>(float (&d)[{k}], {sig}) {{\n"
        f'    asm volatile("{{\\n.reg .pred p;\\nsetp.ne.b32 p, 1, 0;\\n"\n'
        f'                 "wgmma.mma_async.sync.aligned.m64n{n}k16.f32.{ty}.{ty} {regs}, {a_op}, {b_op}, p, '
        f'{scales};\\n}}\\n"\n'
        f"                 : {binds}\n                 : {ins});\n}}\n"
    )


def helpers(ns: tuple[int, ...]) -> str:
    """The protocol functions and wgmma_ss / wgmma_rs for each tile width N in `ns` (multiples of 8, <= 256)."""
    bad = [n for n in ns if n % 8 or not 8 <= n <= 256]
    if bad:
        raise ValueError(f"wgmma tile widths are multiples of 8 from 8 to 256, got {bad}")
    return _PROTOCOL + "".join(_wrapper(n, bf, kind) for n in sorted(set(ns)) for bf in (0, 1) for kind in ("ss", "rs"))
