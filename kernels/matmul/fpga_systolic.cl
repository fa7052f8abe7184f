// A systolic-array GEMM in FPGA style (Kung & Leiserson 1978), emulated on any OpenCL device.
// One work-item plays one R x C array of PEs computing one R x C tile of C[b] = scale * A[b] @ B[b].
// Each cycle, A's V-wide vectors shift one PE right along each row and B's shift one PE down each column;
// row i is fed A(m0+i, k-block t-i) and column j B(k-block t-j, n0+j) (skewed, so matching operands meet in
// PE (i, j)), and every PE adds the V-lane dot product of the two registers it holds. A tile takes
// ceil(K/V) + R + C - 2 cycles: the fill and drain that fpga_model.py charges per tile.
// #defines: R, C, V (array shape), TYPE (float or char), ACC (float or int).
// A (M, K): element (m, k) at m*sam + k*sak; B (K, N): (k, n) at k*sbk + n*sbn; batch strides sa, sb, sc.
__kernel void systolic_gemm(__global const TYPE* restrict A, __global const TYPE* restrict B,
                            __global float* restrict Cm, int M, int N, int K,
                            long sam, long sak, long sbk, long sbn, long sa, long sb, int ldc, long sc,
                            float scale) {
  int m0 = get_global_id(0) * R, n0 = get_global_id(1) * C, bt = get_global_id(2);
  __global const TYPE* a = A + bt * sa;
  __global const TYPE* b = B + bt * sb;
  TYPE areg[R][C][V], breg[R][C][V];
  ACC acc[R][C];
  for (int i = 0; i < R; i++)
    for (int j = 0; j < C; j++) {
      acc[i][j] = 0;
      for (int v = 0; v < V; v++) areg[i][j][v] = breg[i][j][v] = 0;
    }
  int kv = (K + V - 1) / V;
  for (int t = 0; t < kv + R + C - 2; t++) {
    for (int i = 0; i < R; i++)          // A shifts right; the west edge takes a new vector
      for (int j = C - 1; j > 0; j--)
        for (int v = 0; v < V; v++) areg[i][j][v] = areg[i][j - 1][v];
    for (int j = 0; j < C; j++)          // B shifts down; the north edge takes a new vector
      for (int i = R - 1; i > 0; i--)
        for (int v = 0; v < V; v++) breg[i][j][v] = breg[i - 1][j][v];
    for (int i = 0; i < R; i++) {
      int kb = t - i, m = m0 + i;
      for (int v = 0; v < V; v++) {
        int k = kb * V + v;
        areg[i][0][v] = (kb >= 0 && kb < kv && k < K && m < M) ? a[m * sam + k * sak] : 0;
      }
    }
    for (int j = 0; j < C; j++) {
      int kb = t - j, n = n0 + j;
      for (int v = 0; v < V; v++) {
        int k = kb * V + v;
        breg[0][j][v] = (kb >= 0 && kb < kv && k < K && n < N) ? b[k * sbk + n * sbn] : 0;
      }
    }
    for (int i = 0; i < R; i++)          // every PE: V multiply-adds on the pair it holds
      for (int j = 0; j < C; j++) {
        ACC s = 0;
        for (int v = 0; v < V; v++) s += (ACC)areg[i][j][v] * (ACC)breg[i][j][v];
        acc[i][j] += s;
      }
  }
  for (int i = 0; i < R && m0 + i < M; i++)
    for (int j = 0; j < C && n0 + j < N; j++)
      Cm[bt * sc + (long)(m0 + i) * ldc + n0 + j] = scale * (float)acc[i][j];
}

// softmax_rows_f32: scores (rows of length S, in place) -> softmax(scale * s) with the causal mask
// (row r of head h sees keys j <= r % S), streamed: one pass for the running max and sum, one to write.
// NaN and inf as in the reference: a -inf score gets probability 0; a row with a NaN or +inf score, or with
// nothing but -inf, is NaN. Tested on the bits: -cl-fast-relaxed-math lets a compiler assume floats are finite.
#define NEG_INF_BITS 0xff800000u
#define NAN_OR_POS_INF(u) (((u) & 0x7fffffffu) >= 0x7f800000u && (u) != NEG_INF_BITS)
__kernel void softmax_rows_f32(__global float* restrict s, int S, float scale, int causal) {
  long row = get_global_id(0);
  __global float* x = s + row * S;
  int last = causal ? (int)(row % S) : S - 1;
  float m = 0.0f, l = 0.0f;
  int seen = 0, bad = 0;
  for (int j = 0; j <= last; j++) {
    uint u = as_uint(x[j]);
    bad |= NAN_OR_POS_INF(u);
    if (u == NEG_INF_BITS || NAN_OR_POS_INF(u)) continue;
    float v = scale * x[j];
    if (!seen || v > m) { l = seen ? l * exp(m - v) : 0.0f; m = v; seen = 1; }
    l += exp(v - m);
  }
  bad |= !seen;
  for (int j = 0; j < S; j++) {
    int keep = j <= last && as_uint(x[j]) != NEG_INF_BITS;
    x[j] = bad ? as_float(0x7fc00000u) : keep ? exp(scale * x[j] - m) / l : 0.0f;
  }
}
