// Fused attention forward for Hopper (sm_90a) in float16 / bfloat16: softmax(Q K^T * scale [+ causal mask]) V,
// FlashAttention's online softmax with both GEMMs on warpgroup MMA (wgmma), in the manner of FlashAttention-3:
// S = Q K^T with Q and K read by the tensor cores straight from shared memory, then O += P V with P (the
// probabilities, converted in registers from S's accumulators) as the register operand and V^T in shared memory.
// K/V tiles stream through two shared-memory buffers by cp.async while the tensor cores work on the other.
// Not FA3's warp-specialized TMA producer or its ping-pong schedule: every warp loads and computes.
//
// Layouts. Q, K: (B*H, S, ld) 16-bit, ld = head dim rounded up to 8. Vt: (B*H, D, S8), V transposed so that the
// keys (P V's reduction axis) are contiguous, S8 = S rounded up to 8, zero beyond S. O: (B*H, S, D).
// Shared memory tiles are wgmma's K-major layout without swizzling: "core matrices" of 8 rows x 8 elements
// (16 bytes a row) stored as 128 contiguous bytes; a (rows, cols) tile keeps core (rb, cb) at element
// (rb * cols / 8 + cb) * 64, so the stride between cores along the reduction axis (LBO) is 128 bytes and
// between 8-row groups (SBO) cols * 16 bytes. cols is always the GEMM's reduction axis: the head dim for Q and
// K, the keys for V^T.
//
// Block: WG warpgroups of 128 threads (F3_WG, or F3_WG_WIDE above head dim 64), each owning 64 query rows (one
// wgmma M), as FlashAttention-3 gives head dim 64 three consumer warpgroups and head dim 128 two. u16/u32, cp.async and pack2
// come from kernels/mma_ptx.cuh, the wgmma helpers from kernels/wgmma_ptx.py, both pasted in by the launcher.

#ifndef F3_WG
#define F3_WG 3             // warpgroups a block for head dims <= 64: F3_WG * 64 query rows
#endif
#ifndef F3_WG_WIDE
#define F3_WG_WIDE 2        // warpgroups a block above head dim 64
#endif
#ifndef F3_BC
#define F3_BC 128           // keys a shared-memory tile for head dims <= 64
#endif
#ifndef F3_BC_WIDE
#define F3_BC_WIDE 64       // keys a tile above head dim 64 (the 64 x DP output accumulators take the registers)
#endif
#ifndef NEG_INF
#define NEG_INF (-__int_as_float(0x7f800000))
#endif

// wgmma shared-memory descriptor (PTX ISA, matrix-descriptor-format): start address, LBO and SBO in 16-byte
// units at bits 0, 16 and 32; base offset 0 and swizzle mode 0 (none) in bits 49-51 and 62-63.
__device__ __forceinline__ u64 smem_desc(const u16* p, u32 lbo_bytes, u32 sbo_bytes) {
    return (u64)((smem_u32(p) >> 4) & 0x3fff) | (u64)((lbo_bytes >> 4) & 0x3fff) << 16 |
           (u64)((sbo_bytes >> 4) & 0x3fff) << 32;
}

// (nrows, ncols) tile of src, rows [r0, r0 + nrows) and columns [c0, c0 + ncols), into the core-matrix layout;
// zeros where a row reaches rmax or a 16-byte chunk starts at or past cmax. Eight consecutive threads fill one
// core matrix (8 rows of one chunk column): 128 contiguous bytes in shared memory, 4 x 32-byte sectors per warp
// row pair in global memory.
template <int NROWS, int NCOLS, int THREADS>
__device__ __forceinline__ void load_cores(u16* dst, const u16* src, int r0, int rmax, int c0, int cmax, int ld) {
    constexpr int NCH = NCOLS / 8;
    for (int i = threadIdx.x; i < NROWS * NCH; i += THREADS) {
        const int r = (i / (8 * NCH)) * 8 + (i & 7), c = (i >> 3) % NCH;
        const bool ok = (r0 + r < rmax) && (c0 + 8 * c < cmax);
        const u16* s = ok ? src + (size_t)(r0 + r) * ld + c0 + 8 * c : src;
        cp_async16(smem_u32(dst + ((r >> 3) * NCH + c) * 64 + (r & 7) * 8), s, ok ? 16 : 0);
    }
}

// Online softmax over one tile's scores s (64 x BC per warpgroup; this thread: rows row0 and row0 + 8, keys
// kv0 + 8j + 2t + {0, 1}): scale into the log2 domain, mask keys past S (and, causal, past the row), update the
// running max m and sum l, rescale the output accumulators, leave the probabilities in s.
template <int BC, int DP>
__device__ __forceinline__ void softmax_tile(float (&s)[BC / 2], float (&acc)[DP / 2], float (&m)[2], float (&l)[2],
                                             int kv0, int row0, int S, int causal, float scale_log2, int t) {
    const bool masked = (kv0 + BC > S) || (causal && kv0 + BC - 1 > row0);
    #pragma unroll
    for (int i = 0; i < BC / 2; ++i) {
        float x = s[i] * scale_log2;
        if (masked) {
            const int kv = kv0 + 8 * (i >> 2) + 2 * t + (i & 1), row = row0 + 8 * ((i >> 1) & 1);
            if (kv >= S || (causal && kv > row)) x = NEG_INF;
        }
        s[i] = x;
    }
    #pragma unroll
    for (int r = 0; r < 2; ++r) {
        float mx = m[r];
        #pragma unroll
        for (int j = 0; j < BC / 8; ++j) mx = fmaxf(mx, fmaxf(s[4 * j + 2 * r], s[4 * j + 2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float mref = (mx == NEG_INF) ? 0.f : mx;
        const float alpha = exp2f(m[r] - mref);
        m[r] = mx;
        float rs = 0.f;
        #pragma unroll
        for (int j = 0; j < BC / 8; ++j) {
            const float p0 = exp2f(s[4 * j + 2 * r] - mref), p1 = exp2f(s[4 * j + 2 * r + 1] - mref);
            s[4 * j + 2 * r] = p0; s[4 * j + 2 * r + 1] = p1;
            rs += p0 + p1;
        }
        l[r] = l[r] * alpha + rs;          // per-thread partial; the row's 4 threads add up at the end
        #pragma unroll
        for (int j = 0; j < DP / 8; ++j) { acc[4 * j + 2 * r] *= alpha; acc[4 * j + 2 * r + 1] *= alpha; }
    }
}

// One K/V tile for this warpgroup: S = Q K^T (64 x BC) on wgmma from shared memory, the online softmax, then
// O += P V with P from registers: the 16 keys 16kk.. of rows g, g + 8 sit in s[8kk .. 8kk + 7] in exactly the
// order of wgmma's register A fragment (mma.sync's m16n8k16 A layout), as FlashAttention-2 reuses them.
// tQ: the warpgroup's (64, DP) rows of Q; tK: (BC, DP); tV: (DP, BC) = V^T; all in the core-matrix layout.
template <int BF16, int DP, int BC>
__device__ __forceinline__ void attend_tile(float (&acc)[DP / 2], float (&m)[2], float (&l)[2], const u16* tQ,
                                            const u16* tK, const u16* tV, int kv0, int row0, int S, int causal,
                                            float scale_log2, int t) {
    float s[BC / 2];
    #pragma unroll
    for (int i = 0; i < BC / 2; ++i) s[i] = 0.f;
    wgmma_fence();
    #pragma unroll
    for (int kc = 0; kc < DP / 16; ++kc)   // 16 head dims a step: two cores along the reduction axis
        wgmma_ss<BC, BF16>(s, smem_desc(tQ + kc * 128, 128, DP * 16), smem_desc(tK + kc * 128, 128, DP * 16));
    wgmma_commit();
    wgmma_wait<0>(s);

    softmax_tile<BC, DP>(s, acc, m, l, kv0, row0, S, causal, scale_log2, t);

    u32 p[BC / 16][4];
    #pragma unroll
    for (int kk = 0; kk < BC / 16; ++kk) {
        p[kk][0] = pack2<BF16>(s[8 * kk], s[8 * kk + 1]);
        p[kk][1] = pack2<BF16>(s[8 * kk + 2], s[8 * kk + 3]);
        p[kk][2] = pack2<BF16>(s[8 * kk + 4], s[8 * kk + 5]);
        p[kk][3] = pack2<BF16>(s[8 * kk + 6], s[8 * kk + 7]);
    }
    wgmma_fence();
    #pragma unroll
    for (int kk = 0; kk < BC / 16; ++kk)   // 16 keys a step
        wgmma_rs<DP, BF16>(acc, p[kk], smem_desc(tV + kk * 128, 128, BC * 16));
    wgmma_commit();
    wgmma_wait<0>(acc);
    #pragma unroll
    for (int kk = 0; kk < BC / 16; ++kk) reg_fence(p[kk]);   // P's registers stay live until the wait
}

// O rows row0 and row0 + 8 (this thread's columns 8j + 2t, +1), divided by the row sums.
template <int BF16, int DP>
__device__ __forceinline__ void store_rows(u16* o, const float (&acc)[DP / 2], const float (&l)[2], int row0, int S,
                                           int D, int t) {
    #pragma unroll
    for (int r = 0; r < 2; ++r) {
        float sum = l[r];
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        const float inv = sum > 0.f ? 1.f / sum : 0.f;
        const int row = row0 + 8 * r;
        if (row >= S) continue;
        u16* orow = o + (size_t)row * D;
        #pragma unroll
        for (int j = 0; j < DP / 8; ++j) {
            const int col = 8 * j + 2 * t;
            const u32 packed = pack2<BF16>(acc[4 * j + 2 * r] * inv, acc[4 * j + 2 * r + 1] * inv);
            if ((D & 1) == 0 && col + 1 < D) {
                *reinterpret_cast<u32*>(orow + col) = packed;
            } else {
                if (col < D) orow[col] = (u16)(packed & 0xffffu);
                if (col + 1 < D) orow[col + 1] = (u16)(packed >> 16);
            }
        }
    }
}

// grid (ceil(S / (64 * WG)), B * H), block 128 * WG; dynamic shared memory (64 * WG * DP + 4 * BC * DP) * 2 bytes.
template <int BF16, int DP>
__global__ void __launch_bounds__(128 * (DP > 64 ? F3_WG_WIDE : F3_WG), 1)
flash_attn_sm90(const u16* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ vt,
                u16* __restrict__ o, int S, int D, int ld, int S8, float scale_log2, int causal) {
    constexpr int BC = DP > 64 ? F3_BC_WIDE : F3_BC, WG = DP > 64 ? F3_WG_WIDE : F3_WG;
    constexpr int BR = 64 * WG, T = 128 * WG;
    extern __shared__ __align__(128) u16 smem[];
    u16* sQ = smem;                        // (BR, DP)
    u16* sK = sQ + BR * DP;             // 2 x (BC, DP)
    u16* sV = sK + 2 * BC * DP;            // 2 x (DP, BC): V^T

    const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;
    const int qb = causal ? (gridDim.x - 1 - blockIdx.x) : blockIdx.x;   // causal: longest rows start first
    const int q0 = qb * BR, wrow = wg * 64;                          // block's first row; warpgroup's offset
    const int row0 = q0 + wrow + warp * 16 + g;                         // this thread's rows: row0, row0 + 8
    q += (size_t)blockIdx.y * S * ld;
    k += (size_t)blockIdx.y * S * ld;
    vt += (size_t)blockIdx.y * D * S8;
    o += (size_t)blockIdx.y * S * D;
    const int kv_end = causal ? min(S, q0 + BR) : S;
    const int ntiles = (kv_end + BC - 1) / BC;

    load_cores<BR, DP, T>(sQ, q, q0, S, 0, ld, ld);
    load_cores<BC, DP, T>(sK, k, 0, S, 0, ld, ld);
    load_cores<DP, BC, T>(sV, vt, 0, D, 0, S8, S8);
    cp_async_commit();

    float acc[DP / 2];                     // O: (64, DP) per warpgroup, wgmma's accumulator layout
    float m[2] = {NEG_INF, NEG_INF}, l[2] = {0.f, 0.f};   // running max (log2 domain) and sum, rows row0 (+8)
    #pragma unroll
    for (int i = 0; i < DP / 2; ++i) acc[i] = 0.f;

    for (int j = 0; j < ntiles; ++j) {
        const int buf = j & 1, kv0 = j * BC;
        if (j + 1 < ntiles) {              // prefetch the next K/V tile into the other buffer
            load_cores<BC, DP, T>(sK + (buf ^ 1) * BC * DP, k, kv0 + BC, S, 0, ld, ld);
            load_cores<DP, BC, T>(sV + (buf ^ 1) * DP * BC, vt, 0, D, kv0 + BC, S8, S8);
        }
        cp_async_commit();
        cp_async_wait<1>();                // all but the newest group: tile j (and Q) have landed
        fence_proxy_async();               // cp.async wrote them; the tensor cores read them next
        __syncthreads();
        // causal: a warpgroup whose rows all precede this tile has nothing to add (uniform per warpgroup)
        if (!(causal && kv0 > q0 + wrow + 63))
            attend_tile<BF16, DP, BC>(acc, m, l, sQ + wrow * DP, sK + buf * BC * DP, sV + buf * DP * BC, kv0, row0,
                                      S, causal, scale_log2, t);
        __syncthreads();                   // everyone is done with buffer `buf` before it is refilled
    }
    store_rows<BF16, DP>(o, acc, l, row0, S, D, t);
}
