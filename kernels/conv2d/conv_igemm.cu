// conv2d in float16 / bfloat16 as an implicit GEMM on tensor cores (mma.sync m16n8k16, fp32 accumulators), with
// no im2col buffer. For group g (cg = C/groups input, kg = K/groups output channels, kd = cg*R*S):
//   out[n, g*kg + m, p, q] = sum_k w[g*kg + m, k] * col[k, (n, p, q)],   k = (c, r, s),
//   col[k, (n, p, q)] = x[n, g*cg + c, p*sh - ph + r*dh, q*sw - pw + s*dw]   (zero outside the image),
// the patch matrix being read straight from x, a stage at a time, never written to global memory.
//
// Block: IG_BM output channels x IG_BN output pixels (pixels run across images) of one group; grid
// (ceil(N*P*Q / IG_BN), ceil(kg / IG_BM), groups). The reduction runs in stages of IG_BK: a stage's weight tile
// (IG_BM, IG_BK) and patch tile (IG_BK, IG_BN) are read from global memory into registers while the tensor cores
// work on the previous stage's tiles in shared memory (two buffers), then stored. Warps tile the block in
// 32 x 64 pieces (2 m-tiles x 8 n-tiles of mma for every 16 of k). Layouts: x (N, C, H, W), w (K, cg, R, S),
// out (N, K, P, Q), contiguous 16-bit patterns. u16/u32 and the PTX helpers come from kernels/mma_ptx.cuh.

#ifndef IG_BM
#define IG_BM 128                              // output channels per block (a multiple of 32)
#endif
#ifndef IG_BN
#define IG_BN 128                              // output pixels per block (a multiple of 64)
#endif
#ifndef IG_BK
#define IG_BK 32                               // reduction elements per stage (a multiple of 16)
#endif
#define IG_THREADS (32 * (IG_BM / 32) * (IG_BN / 64))
#define IG_PAD 8                               // halves of padding per shared row: ldmatrix rows hit distinct banks
#define IG_LDA (IG_BK + IG_PAD)                // weight tile (IG_BM, IG_BK), k contiguous
#define IG_LDB (IG_BN + IG_PAD)                // patch tile (IG_BK, IG_BN), pixels contiguous
#define IG_A_STEP (IG_THREADS / IG_BK)         // a thread stages weight rows r, r + IG_A_STEP, ... of one column
#define IG_B_STEP (IG_THREADS / IG_BN)         // ... and patch rows k, k + IG_B_STEP, ... of one pixel
#define IG_A_PER (IG_BM / IG_A_STEP)
#define IG_B_PER (IG_BK / IG_B_STEP)
static_assert(IG_THREADS % IG_BK == 0 && IG_THREADS % IG_BN == 0, "every thread stages whole columns");
static_assert(IG_A_PER % 2 == 0 && IG_B_PER % 2 == 0, "staged values pair up");

struct IgGeo {  // the convolution (see the top), as every thread needs it
    int C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw, cg, kg, kd, pq, npq;
};

template <typename T>
struct IgCol {  // one output pixel's patch column: x at (n, the group's first channel), its top-left tap
    const T* x;
    int ih0, iw0;
    bool ok;    // the pixel exists (the last block's columns may run past N*P*Q)
};

template <typename T>
__device__ __forceinline__ IgCol<T> ig_col(const T* x, const IgGeo& G, int grp, int pix) {
    IgCol<T> col{x, 0, 0, pix < G.npq};
    if (!col.ok) return col;
    const int n = pix / G.pq, pq = pix - n * G.pq, p = pq / G.Q, q = pq - p * G.Q;
    col.x = x + ((size_t)n * G.C + (size_t)grp * G.cg) * G.H * G.W;
    col.ih0 = p * G.sh - G.ph;
    col.iw0 = q * G.sw - G.pw;
    return col;
}

// Patch rows k, k + STEP, ... (PER of them) of a pixel's column, each handed to put(j, value): zero where the
// tap falls outside the image or k runs past kd. (c, r, s) stepped along, not divided each time.
template <int PER, int STEP, typename T, typename Put>
__device__ __forceinline__ void ig_patch(const IgCol<T>& col, const IgGeo& G, int k, Put put) {
    const int rs_n = G.R * G.S;
    int c = k / rs_n, rs = k - c * rs_n, r = rs / G.S, s = rs - r * G.S;
    #pragma unroll
    for (int j = 0; j < PER; ++j) {
        const int ih = col.ih0 + r * G.dh, iw = col.iw0 + s * G.dw;
        const bool in = col.ok && k < G.kd && ih >= 0 && ih < G.H && iw >= 0 && iw < G.W;
        put(j, in ? col.x[(size_t)c * G.H * G.W + ih * G.W + iw] : (T)0);
        k += STEP;
        s += STEP;
        while (s >= G.S) { s -= G.S; if (++r == G.R) { r = 0; ++c; } }
    }
}

// Staged values travel two to a register (fewer registers: two blocks fit on an SM without spills).
__device__ __forceinline__ void stage(u32* r, int j, u16 v) {
    if (j & 1) r[j >> 1] |= (u32)v << 16;
    else r[j >> 1] = v;
}
__device__ __forceinline__ u16 staged(const u32* r, int j) { return (u16)(r[j >> 1] >> (16 * (j & 1))); }

// Patch rows k, k + IG_B_STEP, ... of this thread's pixel.
__device__ __forceinline__ void ig_load_b(u32 (&rb)[IG_B_PER / 2], const IgCol<u16>& col, const IgGeo& G, int k) {
    ig_patch<IG_B_PER, IG_B_STEP>(col, G, k, [&](int j, u16 v) { stage(rb, j, v); });
}

// Rows m, m + IG_A_STEP, ... of column k of wb (rows, kd): the block's weights; zero past its rows or kd.
__device__ __forceinline__ void ig_load_a(u32 (&ra)[IG_A_PER / 2], const u16* wb, int rows, int kd, int m, int k) {
    #pragma unroll
    for (int j = 0; j < IG_A_PER; ++j, m += IG_A_STEP)
        stage(ra, j, (m < rows && k < kd) ? wb[(size_t)m * kd + k] : (u16)0);
}

__device__ __forceinline__ void ig_store(u16* sA, u16* sB, const u32 (&ra)[IG_A_PER / 2],
                                         const u32 (&rb)[IG_B_PER / 2], int tid) {
    const int arow = tid / IG_BK, acol = tid % IG_BK, brow = tid / IG_BN, bcol = tid % IG_BN;
    #pragma unroll
    for (int j = 0; j < IG_A_PER; ++j) sA[(arow + j * IG_A_STEP) * IG_LDA + acol] = staged(ra, j);
    #pragma unroll
    for (int j = 0; j < IG_B_PER; ++j) sB[(brow + j * IG_B_STEP) * IG_LDB + bcol] = staged(rb, j);
}

// acc (32 x 64 of this warp, at rows wm, columns wn of the block tile) += sA[wm.., :] @ sB[:, wn..].
// A fragments as the attention kernel's Q (ldmatrix), B as its V (ldmatrix.trans of k-major rows).
template <int BF16>
__device__ __forceinline__ void ig_mma_stage(float (&acc)[2][8][4], const u16* sA, const u16* sB, int wm, int wn,
                                             int lane) {
    #pragma unroll
    for (int kc = 0; kc < IG_BK / 16; ++kc) {
        u32 a[2][4];
        #pragma unroll
        for (int mt = 0; mt < 2; ++mt) {
            const int r = wm + mt * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, c = kc * 16 + (lane >> 4) * 8;
            ldmatrix_x4(a[mt], smem_u32(sA + r * IG_LDA + c));
        }
        #pragma unroll
        for (int nb = 0; nb < 4; ++nb) {
            u32 b[4];
            const int r = kc * 16 + (lane & 7) + ((lane >> 3) & 1) * 8, c = wn + nb * 16 + (lane >> 4) * 8;
            ldmatrix_x4_trans(b, smem_u32(sB + r * IG_LDB + c));
            #pragma unroll
            for (int mt = 0; mt < 2; ++mt) {
                mma16816<BF16>(acc[mt][2 * nb], a[mt], b[0], b[1]);
                mma16816<BF16>(acc[mt][2 * nb + 1], a[mt], b[2], b[3]);
            }
        }
    }
}

// The warp's accumulators -> out; m0 / n0 are the warp tile's first channel (within the group) and pixel.
template <int BF16>
__device__ __forceinline__ void ig_write(u16* out, const float (&acc)[2][8][4], const IgGeo& G, int grp, int m0,
                                         int n0, int lane) {
    const int g = lane >> 2, t = lane & 3;
    #pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
        #pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int pix = n0 + nt * 8 + 2 * t + h;
            if (pix >= G.npq) continue;
            const int n = pix / G.pq, pq = pix - n * G.pq;
            u16* o = out + ((size_t)n * G.K + (size_t)grp * G.kg) * G.pq + pq;
            #pragma unroll
            for (int e = 0; e < 4; e += 2) {
                #pragma unroll
                for (int mt = 0; mt < 2; ++mt) {
                    const int m = m0 + mt * 16 + g + (e >> 1) * 8;
                    if (m < G.kg) o[(size_t)m * G.pq] = (u16)(pack2<BF16>(acc[mt][nt][e + h], 0.f) & 0xffffu);
                }
            }
        }
    }
}

// grid (ceil(N*P*Q / IG_BN), ceil(kg / IG_BM), groups), block IG_THREADS,
// dynamic shared memory 2 * (IG_BM * IG_LDA + IG_BK * IG_LDB) * 2 bytes.
template <int BF16>
__global__ void __launch_bounds__(IG_THREADS, 2)
conv_igemm(const u16* __restrict__ x, const u16* __restrict__ w, u16* __restrict__ out, int N, int C, int H, int W,
           int K, int R, int S, int P, int Q, int sh, int sw, int ph, int pw, int dh, int dw, int groups) {
    extern __shared__ __align__(16) u16 smem[];
    u16* sA = smem;                            // 2 x (IG_BM, IG_LDA)
    u16* sB = smem + 2 * IG_BM * IG_LDA;       // 2 x (IG_BK, IG_LDB)
    const int cg = C / groups, kg = K / groups;
    const IgGeo G{C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw, cg, kg, cg * R * S, P * Q, N * P * Q};
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, grp = blockIdx.z;
    const int m0 = blockIdx.y * IG_BM, n0 = blockIdx.x * IG_BN;
    const int wm = (warp % (IG_BM / 32)) * 32, wn = (warp / (IG_BM / 32)) * 64;
    const u16* wb = w + ((size_t)grp * kg + m0) * G.kd;   // (kg - m0, kd): this block's weight rows
    const IgCol<u16> col = ig_col(x, G, grp, n0 + tid % IG_BN);
    const int arow = tid / IG_BK, acol = tid % IG_BK, brow = tid / IG_BN;

    float acc[2][8][4] = {};
    u32 ra[IG_A_PER / 2], rb[IG_B_PER / 2];
    const int stages = (G.kd + IG_BK - 1) / IG_BK;
    ig_load_a(ra, wb, kg - m0, G.kd, arow, acol);
    ig_load_b(rb, col, G, brow);
    ig_store(sA, sB, ra, rb, tid);
    __syncthreads();
    for (int st = 0; st < stages; ++st) {
        const int buf = st & 1, k1 = (st + 1) * IG_BK;
        if (st + 1 < stages) {                 // next stage's loads in flight during this stage's mma
            ig_load_a(ra, wb, kg - m0, G.kd, arow, k1 + acol);
            ig_load_b(rb, col, G, k1 + brow);
        }
        ig_mma_stage<BF16>(acc, sA + buf * IG_BM * IG_LDA, sB + buf * IG_BK * IG_LDB, wm, wn, lane);
        if (st + 1 < stages) ig_store(sA + (buf ^ 1) * IG_BM * IG_LDA, sB + (buf ^ 1) * IG_BK * IG_LDB, ra, rb, tid);
        __syncthreads();                       // buffer buf is free again, buf ^ 1 is complete
    }
    ig_write<BF16>(out, acc, G, grp, m0 + wm, n0 + wn, lane);
}
