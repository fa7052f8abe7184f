// int8 GEMM for the opencl backend: C[b] (M, N) int32 = A[b] (M, K) int8 @ B[b] (K, N) int8, exact.
// Both operands are first packed as rows of length Kp (K rounded up to 16, zero padded): A as (M, Kp) and B as its
// transpose (N, Kp), so an output is a run of char16 dot products (4 char4 dot products each) along two rows.
// A work-item computes a TM x TN block of C. Products of two int8 fit a short (|p| <= 128 * 128 = 16384),
// widened to int before any sum: a pair of shorts in an int lane is what VPMADDWD / VNNI take.

inline int dot16(char16 a, char16 b) {
  short16 p = convert_short16(a) * convert_short16(b);
  int8 q = convert_int8(p.lo) + convert_int8(p.hi);
  int4 r = q.lo + q.hi;
  return r.x + r.y + r.z + r.w;
}

// dst (batch, rows, Kp) = src's (r, k) at b*s_batch + r*s_row + k*s_k, zero for k >= K.
__kernel void pack_i8(__global const char* restrict src, __global char* restrict dst, int rows, int K, int Kp,
                      long s_batch, long s_row, long s_k) {
  int r = get_global_id(0), k = get_global_id(1), b = get_global_id(2);
  dst[((long)b * rows + r) * Kp + k] = k < K ? src[b * s_batch + r * s_row + k * s_k] : 0;
}

// Packed A (M, Kp) and B^T (N, Kp) of batch bt at bt*sa and bt*sb (0: one matrix for every batch).
__kernel void matmul_i8(__global const char* restrict Ap, __global const char* restrict Bp,
                        __global int* restrict C, int M, int N, int Kp, long sa, long sb) {
  int m0 = get_global_id(0) * TM, n0 = get_global_id(1) * TN, bt = get_global_id(2);
  __global const char* a0 = Ap + bt * sa;
  __global const char* b0 = Bp + bt * sb;
  int acc[TM][TN];
  for (int i = 0; i < TM; i++)
    for (int j = 0; j < TN; j++) acc[i][j] = 0;
  for (int k = 0; k < Kp; k += 16) {
    char16 a[TM], b[TN];
    for (int i = 0; i < TM; i++) a[i] = m0 + i < M ? vload16(0, a0 + (long)(m0 + i) * Kp + k) : (char16)(0);
    for (int j = 0; j < TN; j++) b[j] = n0 + j < N ? vload16(0, b0 + (long)(n0 + j) * Kp + k) : (char16)(0);
    for (int i = 0; i < TM; i++)
      for (int j = 0; j < TN; j++) acc[i][j] += dot16(a[i], b[j]);
  }
  for (int i = 0; i < TM && m0 + i < M; i++)
    for (int j = 0; j < TN && n0 + j < N; j++) C[((long)bt * M + m0 + i) * N + n0 + j] = acc[i][j];
}
