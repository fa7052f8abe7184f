// Fused flash-style attention forward, softmax(Q K^T * scale [+ causal mask]) V, layout (B, H, S, D).
// Never materializes the (S, S) scores: each block keeps a tile of query rows and streams key/value tiles
// through shared memory with an online softmax (FlashAttention-2's loop order: queries outer, keys inner).
//
//   flash_attn_mma<BF16, DP>  float16 (BF16=0) / bfloat16 (BF16=1): tensor cores, mma.sync m16n8k16 with fp32
//                             accumulators, ldmatrix from padded shared memory, cp.async double-buffered K/V.
//   flash_attn_f32<DP>        float32: CUDA cores, fp32 throughout (exact to float32 rounding, no tf32).
// DP is the head dim padded to a multiple of 16 (zero-filled); `ld` is the row stride of Q/K/V in elements.
// u16/u32 and the PTX helpers (cp.async, ldmatrix, mma.sync, pack2) come from kernels/mma_ptx.cuh, which the
// launcher pastes in before this text (NVRTC gets no include path); 16-bit values travel as unsigned short.

#ifndef FA_WARPS
#define FA_WARPS 4          // warps per block in the 16-bit kernel; each warp owns 16 query rows
#endif
#ifndef FA_MT
#define FA_MT 2             // 16-row m-tiles per warp (16-bit kernel)
#endif
#ifndef FA_BC
#define FA_BC 64            // keys per shared-memory tile (16-bit kernel), head dim <= 64
#endif
#ifndef FA_BC_WIDE
#define FA_BC_WIDE 32       // keys per tile for head dims above 64 (keeps the score registers in budget)
#endif
#ifndef FA_PAD
#define FA_PAD 8            // halves of padding per shared-memory row: ldmatrix rows land in different banks
#endif
#ifndef F32_ROWS
#define F32_ROWS 32         // query rows per block in the fp32 kernel (4 threads per row)
#endif
#ifndef F32_BC
#define F32_BC 32           // keys per shared-memory tile (fp32 kernel)
#endif
#define FA_BR (16 * FA_MT * FA_WARPS)
#define FA_THREADS (32 * FA_WARPS)
#define NEG_INF (-__int_as_float(0x7f800000))

// ---- 16-bit kernel: tensor cores -----------------------------------------------------------------------
// Rows [r0, r0 + nrows) of src (S, ld) -> dst (nrows, DP + FA_PAD) in shared memory, zeros outside.
template <int DP>
__device__ __forceinline__ void load_tile(u16* dst, const u16* src, int r0, int nrows, int S, int ld) {
    constexpr int LDS = DP + FA_PAD, NCH = DP / 8;   // 16-byte chunks per row
    for (int i = threadIdx.x; i < nrows * NCH; i += FA_THREADS) {
        const int r = i / NCH, c = (i % NCH) * 8;
        const bool ok = (r0 + r < S) && (c < ld);
        const u16* s = ok ? src + (size_t)(r0 + r) * ld + c : src;
        cp_async16(smem_u32(dst + r * LDS + c), s, ok ? 16 : 0);
    }
}

// grid (ceil(S / FA_BR), B * H), block FA_THREADS; dynamic shared memory (FA_BR + 4 * BC) * (DP + FA_PAD) * 2.
// Each warp owns FA_MT * 16 query rows: every K/V fragment read from shared memory feeds FA_MT mma's.
template <int BF16, int DP>
__global__ void __launch_bounds__(FA_THREADS)
flash_attn_mma(const u16* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
               u16* __restrict__ o, int S, int D, int ld, float scale_log2, int causal) {
    constexpr int LDS = DP + FA_PAD, BC = DP > 64 ? FA_BC_WIDE : FA_BC, MT = FA_MT;
    extern __shared__ __align__(16) u16 smem[];
    u16* sQ = smem;                        // (FA_BR, LDS)
    u16* sK = sQ + FA_BR * LDS;            // 2 x (BC, LDS)
    u16* sV = sK + 2 * BC * LDS;           // 2 x (BC, LDS)

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int qb = causal ? (gridDim.x - 1 - blockIdx.x) : blockIdx.x;   // causal: longest rows start first
    const int q0 = qb * FA_BR, wrow = warp * 16 * MT;                      // block's and warp's first row
    const size_t head = (size_t)blockIdx.y * S * ld;
    q += head; k += head; v += head;
    o += (size_t)blockIdx.y * S * D;
    const int kv_end = causal ? min(S, q0 + FA_BR) : S;
    const int ntiles = (kv_end + BC - 1) / BC;

    load_tile<DP>(sQ, q, q0, FA_BR, S, ld);
    load_tile<DP>(sK, k, 0, BC, S, ld);
    load_tile<DP>(sV, v, 0, BC, S, ld);
    cp_async_commit();

    float acc[MT][DP / 8][4];              // O accumulators: (16 * MT, DP) per warp
    float m[MT][2], l[MT][2];              // running max (log2 domain) and sum of rows g and g + 8 of each m-tile
    #pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
        m[mt][0] = m[mt][1] = NEG_INF; l[mt][0] = l[mt][1] = 0.f;
        #pragma unroll
        for (int i = 0; i < DP / 8; ++i) acc[mt][i][0] = acc[mt][i][1] = acc[mt][i][2] = acc[mt][i][3] = 0.f;
    }

    for (int j = 0; j < ntiles; ++j) {
        const int buf = j & 1, kv0 = j * BC;
        if (j + 1 < ntiles) {              // prefetch the next K/V tile into the other buffer
            load_tile<DP>(sK + (buf ^ 1) * BC * LDS, k, kv0 + BC, BC, S, ld);
            load_tile<DP>(sV + (buf ^ 1) * BC * LDS, v, kv0 + BC, BC, S, ld);
        }
        cp_async_commit();
        cp_async_wait<1>();                // all but the newest group: tile j (and Q) have landed
        __syncthreads();
        // causal: a warp whose rows all precede this tile has nothing to add
        if (!(causal && kv0 > q0 + wrow + 16 * MT - 1)) {
            const u16* tK = sK + buf * BC * LDS;
            const u16* tV = sV + buf * BC * LDS;

            // S = Q K^T: per m-tile (16, BC) as BC/8 accumulators of 16x8
            float s[MT][BC / 8][4];
            #pragma unroll
            for (int mt = 0; mt < MT; ++mt)
                #pragma unroll
                for (int n = 0; n < BC / 8; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.f;
            #pragma unroll
            for (int kc = 0; kc < DP / 16; ++kc) {
                u32 qa[MT][4];
                #pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    const int r = wrow + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, c = kc * 16 + (lane >> 4) * 8;
                    ldmatrix_x4(qa[mt], smem_u32(sQ + r * LDS + c));
                }
                #pragma unroll
                for (int nb = 0; nb < BC / 16; ++nb) {
                    u32 b[4];
                    const int r = nb * 16 + (lane & 7) + (lane >> 4) * 8, c = kc * 16 + ((lane >> 3) & 1) * 8;
                    ldmatrix_x4(b, smem_u32(tK + r * LDS + c));
                    #pragma unroll
                    for (int mt = 0; mt < MT; ++mt) {
                        mma16816<BF16>(s[mt][2 * nb], qa[mt], b[0], b[1]);
                        mma16816<BF16>(s[mt][2 * nb + 1], qa[mt], b[2], b[3]);
                    }
                }
            }

            // scale (log2 domain), mask, online softmax
            const bool masked = (kv0 + BC > S) || (causal && kv0 + BC - 1 > q0 + wrow);
            #pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                #pragma unroll
                for (int n = 0; n < BC / 8; ++n) {
                    #pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        float x = s[mt][n][e] * scale_log2;
                        if (masked) {
                            const int kv = kv0 + n * 8 + 2 * t + (e & 1), row = q0 + wrow + mt * 16 + g + (e >> 1) * 8;
                            if (kv >= S || (causal && kv > row)) x = NEG_INF;
                        }
                        s[mt][n][e] = x;
                    }
                }
                #pragma unroll
                for (int r = 0; r < 2; ++r) {
                    float mx = m[mt][r];
                    #pragma unroll
                    for (int n = 0; n < BC / 8; ++n) mx = fmaxf(mx, fmaxf(s[mt][n][2 * r], s[mt][n][2 * r + 1]));
                    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                    const float mref = (mx == NEG_INF) ? 0.f : mx;
                    const float alpha = exp2f(m[mt][r] - mref);
                    m[mt][r] = mx;
                    float rs = 0.f;
                    #pragma unroll
                    for (int n = 0; n < BC / 8; ++n) {
                        const float p0 = exp2f(s[mt][n][2 * r] - mref), p1 = exp2f(s[mt][n][2 * r + 1] - mref);
                        s[mt][n][2 * r] = p0; s[mt][n][2 * r + 1] = p1;
                        rs += p0 + p1;
                    }
                    l[mt][r] = l[mt][r] * alpha + rs;   // per-thread partial; the row's 4 threads add up at the end
                    #pragma unroll
                    for (int dn = 0; dn < DP / 8; ++dn) { acc[mt][dn][2 * r] *= alpha; acc[mt][dn][2 * r + 1] *= alpha; }
                }
            }

            // O += P V: P's accumulators become A fragments directly (FlashAttention-2's register reuse)
            #pragma unroll
            for (int kk = 0; kk < BC / 16; ++kk) {
                u32 a[MT][4];
                #pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    a[mt][0] = pack2<BF16>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
                    a[mt][1] = pack2<BF16>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
                    a[mt][2] = pack2<BF16>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
                    a[mt][3] = pack2<BF16>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
                }
                #pragma unroll
                for (int db = 0; db < DP / 16; ++db) {
                    u32 b[4];
                    const int r = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, c = db * 16 + (lane >> 4) * 8;
                    ldmatrix_x4_trans(b, smem_u32(tV + r * LDS + c));
                    #pragma unroll
                    for (int mt = 0; mt < MT; ++mt) {
                        mma16816<BF16>(acc[mt][2 * db], a[mt], b[0], b[1]);
                        mma16816<BF16>(acc[mt][2 * db + 1], a[mt], b[2], b[3]);
                    }
                }
            }
        }
        __syncthreads();                   // everyone is done with buffer `buf` before it is refilled
    }

    #pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
        #pragma unroll
        for (int r = 0; r < 2; ++r) {
            float sum = l[mt][r];
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            sum += __shfl_xor_sync(0xffffffffu, sum, 2);
            const float inv = sum > 0.f ? 1.f / sum : 0.f;
            const int row = q0 + wrow + mt * 16 + g + r * 8;
            if (row >= S) continue;
            u16* orow = o + (size_t)row * D;
            #pragma unroll
            for (int dn = 0; dn < DP / 8; ++dn) {
                const int col = dn * 8 + 2 * t;
                const u32 packed = pack2<BF16>(acc[mt][dn][2 * r] * inv, acc[mt][dn][2 * r + 1] * inv);
                if ((D & 1) == 0 && col + 1 < D) {
                    *reinterpret_cast<u32*>(orow + col) = packed;
                } else {
                    if (col < D) orow[col] = (u16)(packed & 0xffffu);
                    if (col + 1 < D) orow[col + 1] = (u16)(packed >> 16);
                }
            }
        }
    }
}

// ---- float32 kernel: CUDA cores ------------------------------------------------------------------------
// grid (ceil(S / F32_ROWS), B * H), block 4 * F32_ROWS. Thread (row, j) owns the float4 columns j, j+4, j+8, ...
// of its row, so the 4 threads of a row read 64 consecutive bytes of a K/V row (no bank conflicts) and the
// 8 rows of a warp share them (broadcast). Q/K/V/O are (B, H, S, D) float32 with row stride D.
template <int DP>
__global__ void __launch_bounds__(4 * F32_ROWS)
flash_attn_f32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
               float* __restrict__ o, int S, int D, float scale_log2, int causal) {
    constexpr int NV = DP / 16;            // float4s per thread
    __shared__ __align__(16) float sK[F32_BC * DP];
    __shared__ __align__(16) float sV[F32_BC * DP];
    const int tid = threadIdx.x, j4 = tid & 3;
    const int qb = causal ? (gridDim.x - 1 - blockIdx.x) : blockIdx.x;
    const int q0 = qb * F32_ROWS, row = q0 + (tid >> 2);
    const size_t head = (size_t)blockIdx.y * S * D;
    q += head; k += head; v += head; o += head;

    float4 qv[NV], acc[NV];
    #pragma unroll
    for (int i = 0; i < NV; ++i) {
        const int c = 4 * (j4 + 4 * i);
        float x[4];
        #pragma unroll
        for (int e = 0; e < 4; ++e) x[e] = (row < S && c + e < D) ? q[(size_t)row * D + c + e] * scale_log2 : 0.f;
        qv[i] = make_float4(x[0], x[1], x[2], x[3]);
        acc[i] = make_float4(0.f, 0.f, 0.f, 0.f);
    }
    float m = NEG_INF, l = 0.f;
    const int kv_end = causal ? min(S, q0 + F32_ROWS) : S;

    for (int kv0 = 0; kv0 < kv_end; kv0 += F32_BC) {
        for (int i = tid; i < F32_BC * DP; i += 4 * F32_ROWS) {   // (F32_BC, DP) tiles, zero-filled
            const int r = i / DP, c = i % DP;
            const bool ok = kv0 + r < S && c < D;
            sK[i] = ok ? k[(size_t)(kv0 + r) * D + c] : 0.f;
            sV[i] = ok ? v[(size_t)(kv0 + r) * D + c] : 0.f;
        }
        __syncthreads();
        #pragma unroll 1
        for (int c0 = 0; c0 < F32_BC; c0 += 8) {   // 8 keys per online-softmax step
            float sc[8];
            #pragma unroll
            for (int kk = 0; kk < 8; ++kk) {
                const float4* kr = reinterpret_cast<const float4*>(sK + (c0 + kk) * DP);
                float dot = 0.f;
                #pragma unroll
                for (int i = 0; i < NV; ++i) {
                    const float4 kx = kr[j4 + 4 * i];
                    dot = fmaf(qv[i].x, kx.x, fmaf(qv[i].y, kx.y, fmaf(qv[i].z, kx.z, fmaf(qv[i].w, kx.w, dot))));
                }
                dot += __shfl_xor_sync(0xffffffffu, dot, 1);
                dot += __shfl_xor_sync(0xffffffffu, dot, 2);
                const int kv = kv0 + c0 + kk;
                sc[kk] = (kv >= S || (causal && kv > row)) ? NEG_INF : dot;
            }
            float mx = m;
            #pragma unroll
            for (int kk = 0; kk < 8; ++kk) mx = fmaxf(mx, sc[kk]);
            const float mref = (mx == NEG_INF) ? 0.f : mx;
            const float alpha = exp2f(m - mref);
            m = mx;
            l *= alpha;
            #pragma unroll
            for (int i = 0; i < NV; ++i) { acc[i].x *= alpha; acc[i].y *= alpha; acc[i].z *= alpha; acc[i].w *= alpha; }
            #pragma unroll
            for (int kk = 0; kk < 8; ++kk) {
                const float p = exp2f(sc[kk] - mref);
                l += p;
                const float4* vr = reinterpret_cast<const float4*>(sV + (c0 + kk) * DP);
                #pragma unroll
                for (int i = 0; i < NV; ++i) {
                    const float4 vx = vr[j4 + 4 * i];
                    acc[i].x = fmaf(p, vx.x, acc[i].x); acc[i].y = fmaf(p, vx.y, acc[i].y);
                    acc[i].z = fmaf(p, vx.z, acc[i].z); acc[i].w = fmaf(p, vx.w, acc[i].w);
                }
            }
        }
        __syncthreads();
    }
    if (row >= S) return;
    const float inv = l > 0.f ? 1.f / l : 0.f;
    #pragma unroll
    for (int i = 0; i < NV; ++i) {
        const int c = 4 * (j4 + 4 * i);
        const float x[4] = {acc[i].x, acc[i].y, acc[i].z, acc[i].w};
        #pragma unroll
        for (int e = 0; e < 4; ++e) if (c + e < D) o[(size_t)row * D + c + e] = x[e] * inv;
    }
}
