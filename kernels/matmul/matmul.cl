// Register-blocked GEMM for OpenCL CPU devices (PoCL) and GPUs alike, float32.
//   C[b] (M, N) = A[b] (M, K) @ B[b] (K, N), via operands packed into panels first.
// Tuning values come in as #defines: TM rows x (VW * NV) columns per work-item, held in TM * NV vectors of
// width VW. PoCL compiles a work-group into loops over its work-items, so the speed comes from one work-item's
// register tile (AVX2: 6-8 rows x 16 columns = 12-16 ymm accumulators), not from local memory.
// Builtins (mad, vload8) are library calls in PoCL 3.0, so plain `+=` on vectors and pointer casts are used
// and -cl-fast-relaxed-math / -cl-mad-enable let LLVM fuse them into FMAs.
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define VN CAT(float, VW)
#define TN (VW * NV)

// pack_f32: rows x K operand at src (element (r, k) at r*s_row + k*s_k, batch b at b*s_batch)
//   -> dst (ceil(rows/T), K, T): T consecutive rows side by side for each k, zero padded.
// Both operands go through it: A with rows = M; B with rows = N (its columns), so any transpose is free.
// Work-item (tile, chunk of PACK_KC k's, b) moves one T x PACK_KC block, reading along whichever of r and k is
// contiguous in src; its writes fill PACK_KC * T consecutive floats. (A work-item per element, reading across
// rows, costs CPU devices more than the GEMM it feeds.)
__kernel void pack_f32(__global const float* restrict src, __global float* restrict dst, int rows, int K,
                       int T, long s_batch, long s_row, long s_k, long d_batch) {
  int tile = get_global_id(0), k0 = get_global_id(1) * PACK_KC, b = get_global_id(2);
  if (k0 >= K) return;
  int kn = min(PACK_KC, K - k0), r0 = tile * T;
  __global const float* s = src + b * s_batch;
  __global float* d = dst + b * d_batch + ((long)tile * K + k0) * T;
  if (s_k == 1) {
    for (int i = 0; i < T; i++) {
      __global const float* row = s + (long)(r0 + i) * s_row + k0;
      if (r0 + i < rows)
        for (int kk = 0; kk < kn; kk++) d[kk * T + i] = row[kk];
      else
        for (int kk = 0; kk < kn; kk++) d[kk * T + i] = 0.0f;
    }
  } else {
    for (int kk = 0; kk < kn; kk++) {
      __global const float* col = s + (long)(k0 + kk) * s_k;
      for (int i = 0; i < T; i++) d[kk * T + i] = r0 + i < rows ? col[(long)(r0 + i) * s_row] : 0.0f;
    }
  }
}

// matmul_f32: Ap (Mt, K, TM) and Bp (Nt, K, TN) packed panels -> C rows of stride ldc. Work-item (mt, nt, b).
__kernel void matmul_f32(__global const float* restrict Ap, __global const float* restrict Bp,
                         __global float* restrict C, int M, int N, int K, int ldc,
                         long sa, long sb, long sc) {
  int mt = get_global_id(0), nt = get_global_id(1), b = get_global_id(2);
  __global const float* a = Ap + b * sa + (long)mt * K * TM;
  __global const float* bp = Bp + b * sb + (long)nt * K * TN;
  VN acc[TM][NV];
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < NV; j++) acc[i][j] = (VN)(0.0f);
  for (int k = 0; k < K; k++) {
    VN bv[NV];
#pragma unroll
    for (int j = 0; j < NV; j++) bv[j] = ((__global const VN*)(bp + k * TN))[j];
#pragma unroll
    for (int i = 0; i < TM; i++) {
      VN av = (VN)(a[k * TM + i]);
#pragma unroll
      for (int j = 0; j < NV; j++) acc[i][j] += av * bv[j];
    }
  }
  int m0 = mt * TM, n0 = nt * TN;
  __global float* c = C + b * sc;
#pragma unroll
  for (int i = 0; i < TM; i++) {
    if (m0 + i >= M) break;
    __global float* row = c + (long)(m0 + i) * ldc;
#pragma unroll
    for (int j = 0; j < NV; j++) {
      int n = n0 + j * VW;
      if (n + VW <= N && ((long)row & (VW * 4 - 1)) == 0 && (n % VW) == 0 && (ldc % VW) == 0) {
        *((__global VN*)(row + n)) = acc[i][j];
      } else {
        float t[VW];
        *((VN*)t) = acc[i][j];
        for (int q = 0; q < VW && n + q < N; q++) row[n + q] = t[q];
      }
    }
  }
}
