// conv2d in float32 on CUDA cores as an implicit GEMM, with no im2col buffer: conv_igemm.cu's geometry (see its
// top: out[n, g*kg + m, p, q] = sum_k w[g*kg + m, k] * col[k, (n, p, q)], k = (c, r, s), col read straight from x)
// with fp32 FFMA in registers instead of 16-bit tensor cores, so float32 results stay float32 (no tf32).
//
// Block: SG_BM output channels x SG_BN output pixels (pixels run across images) of one group; grid
// (ceil(N*P*Q / SG_BN), ceil(kg / SG_BM), groups), SG_THREADS = 256 threads, each owning an 8 x 8 register tile:
// channels 4*tm..4*tm+3 and SG_BM/2 + the same, pixels 4*tn.. and SG_BN/2 + the same (tm = tid % 16,
// tn = tid / 16; the split halves keep a warp's float4 reads of shared memory in distinct banks). The reduction
// runs in stages of SG_BK: a stage's weight tile, stored k-major (SG_BK, SG_BM), and patch tile (SG_BK, SG_BN)
// are read from global memory into registers while the previous stage's tiles in shared memory (two buffers)
// are multiplied, then stored. Layouts: x (N, C, H, W), w (K, cg, R, S), out (N, K, P, Q), float32. The
// launcher pastes this text after conv_igemm.cu's, whose geometry (IgGeo) and patch-column walk (IgCol, ig_col,
// ig_patch) it shares; u16 (the shared-memory array's declared type) comes from kernels/mma_ptx.cuh before both.

#ifndef SG_BM
#define SG_BM 128                              // output channels per block
#endif
#ifndef SG_BN
#define SG_BN 128                              // output pixels per block
#endif
#ifndef SG_BK
#define SG_BK 8                                // reduction elements per stage
#endif
#define SG_THREADS 256
#define SG_A_PER (SG_BM * SG_BK / SG_THREADS)  // weight values a thread stages (rows m, m + SG_A_STEP, ...)
#define SG_B_PER (SG_BK * SG_BN / SG_THREADS)  // patch values a thread stages (rows k, k + SG_B_STEP, ...)
#define SG_A_STEP (SG_THREADS / SG_BK)
#define SG_B_STEP (SG_THREADS / SG_BN)
static_assert(SG_BM == 128 && SG_BN == 128, "the 16 x 16 threads' 8 x 8 tiles cover 128 x 128");
static_assert(SG_THREADS % SG_BK == 0 && SG_THREADS % SG_BN == 0, "every thread stages whole columns");

// Rows m, m + SG_A_STEP, ... of column k of wb (rows, kd): the block's weights; zero past its rows or kd.
__device__ __forceinline__ void sg_load_a(float (&ra)[SG_A_PER], const float* wb, int rows, int kd, int m, int k) {
    #pragma unroll
    for (int j = 0; j < SG_A_PER; ++j, m += SG_A_STEP) ra[j] = (m < rows && k < kd) ? wb[(size_t)m * kd + k] : 0.f;
}

__device__ __forceinline__ void sg_store(float* sA, float* sB, const float (&ra)[SG_A_PER],
                                         const float (&rb)[SG_B_PER], int tid) {
    const int arow = tid / SG_BK, acol = tid % SG_BK, brow = tid / SG_BN, bcol = tid % SG_BN;
    #pragma unroll
    for (int j = 0; j < SG_A_PER; ++j) sA[acol * SG_BM + arow + j * SG_A_STEP] = ra[j];   // k-major
    #pragma unroll
    for (int j = 0; j < SG_B_PER; ++j) sB[(brow + j * SG_B_STEP) * SG_BN + bcol] = rb[j];
}

// acc (8 x 8) += this thread's rows of sA times its columns of sB, over one stage.
__device__ __forceinline__ void sg_fma_stage(float (&acc)[8][8], const float* sA, const float* sB, int tm, int tn) {
    #pragma unroll
    for (int k = 0; k < SG_BK; ++k) {
        const float4 a0 = *reinterpret_cast<const float4*>(sA + k * SG_BM + 4 * tm);
        const float4 a1 = *reinterpret_cast<const float4*>(sA + k * SG_BM + SG_BM / 2 + 4 * tm);
        const float4 b0 = *reinterpret_cast<const float4*>(sB + k * SG_BN + 4 * tn);
        const float4 b1 = *reinterpret_cast<const float4*>(sB + k * SG_BN + SG_BN / 2 + 4 * tn);
        const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
        #pragma unroll
        for (int i = 0; i < 8; ++i)
            #pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
}

// The thread's 8 x 8 tile -> out; m0 / n0 are the block's first channel (within the group) and pixel.
__device__ __forceinline__ void sg_write(float* out, const float (&acc)[8][8], const IgGeo& G, int grp, int m0,
                                         int n0, int tm, int tn) {
    #pragma unroll
    for (int j = 0; j < 8; ++j) {
        const int pix = n0 + (j < 4 ? 4 * tn + j : SG_BN / 2 + 4 * tn + j - 4);
        if (pix >= G.npq) continue;
        const int n = pix / G.pq, pq = pix - n * G.pq;
        float* o = out + ((size_t)n * G.K + (size_t)grp * G.kg) * G.pq + pq;
        #pragma unroll
        for (int i = 0; i < 8; ++i) {
            const int m = m0 + (i < 4 ? 4 * tm + i : SG_BM / 2 + 4 * tm + i - 4);
            if (m < G.kg) o[(size_t)m * G.pq] = acc[i][j];
        }
    }
}

// grid (ceil(N*P*Q / SG_BN), ceil(kg / SG_BM), groups), block SG_THREADS, dynamic shared memory
// 2 * (SG_BK * SG_BM + SG_BK * SG_BN) * 4 bytes (16 KB at the defaults).
__global__ void __launch_bounds__(SG_THREADS, 2)
conv_sgemm(const float* __restrict__ x, const float* __restrict__ w, float* __restrict__ out, int N, int C, int H,
           int W, int K, int R, int S, int P, int Q, int sh, int sw, int ph, int pw, int dh, int dw, int groups) {
    extern __shared__ __align__(16) u16 smem[];  // u16: the name the other kernels (and the host shim) share
    float* sA = reinterpret_cast<float*>(smem);            // 2 x (SG_BK, SG_BM), k-major
    float* sB = sA + 2 * SG_BK * SG_BM;                    // 2 x (SG_BK, SG_BN)
    const int cg = C / groups, kg = K / groups;
    const IgGeo G{C, H, W, K, R, S, P, Q, sh, sw, ph, pw, dh, dw, cg, kg, cg * R * S, P * Q, N * P * Q};
    const int tid = threadIdx.x, tm = tid % 16, tn = tid / 16, grp = blockIdx.z;
    const int m0 = blockIdx.y * SG_BM, n0 = blockIdx.x * SG_BN;
    const float* wb = w + ((size_t)grp * kg + m0) * G.kd;   // (kg - m0, kd): this block's weight rows
    const int arow = tid / SG_BK, acol = tid % SG_BK, brow = tid / SG_BN;
    const IgCol<float> col = ig_col(x, G, grp, n0 + tid % SG_BN);

    float acc[8][8] = {};
    float ra[SG_A_PER], rb[SG_B_PER];
    const int stages = (G.kd + SG_BK - 1) / SG_BK;
    sg_load_a(ra, wb, kg - m0, G.kd, arow, acol);
    ig_patch<SG_B_PER, SG_B_STEP>(col, G, brow, [&](int j, float v) { rb[j] = v; });
    sg_store(sA, sB, ra, rb, tid);
    __syncthreads();
    for (int st = 0; st < stages; ++st) {
        const int buf = st & 1, k1 = (st + 1) * SG_BK;
        if (st + 1 < stages) {                 // next stage's loads in flight during this stage's FMAs
            sg_load_a(ra, wb, kg - m0, G.kd, arow, k1 + acol);
            ig_patch<SG_B_PER, SG_B_STEP>(col, G, k1 + brow, [&](int j, float v) { rb[j] = v; });
        }
        sg_fma_stage(acc, sA + buf * SG_BK * SG_BM, sB + buf * SG_BK * SG_BN, tm, tn);
        if (st + 1 < stages) sg_store(sA + (buf ^ 1) * SG_BK * SG_BM, sB + (buf ^ 1) * SG_BK * SG_BN, ra, rb, tid);
        __syncthreads();                       // buffer buf is free again, buf ^ 1 is complete
    }
    sg_write(out, acc, G, grp, m0, n0, tm, tn);
}
