#if INT_OUT
#define OUT int
#else
#define OUT float
#endif
// A systolic-array GEMM in FPGA style (Kung & Leiserson 1978), emulated on any OpenCL device.
// One work-item plays one R x C array of PEs computing one R x C tile of C[b] = scale * A[b] @ B[b].
// Each cycle, A's V-wide vectors shift one PE right along each row and B's shift one PE down each column;
// row i is fed A(m0+i, k-block t-i) and column j B(k-block t-j, n0+j) (skewed, so matching operands meet in
// PE (i, j)), and every PE adds the V-lane dot product of the two registers it holds. A tile takes
// ceil(K/V) + R + C - 2 cycles: the fill and drain that fpga_model.py charges per tile.
// #defines: R, C, V (array shape), TYPE (float or char), ACC (float or int), INT_OUT (1: C gets the int32
// accumulators as they are, exact, and scale is unused; 0: C gets scale * acc as float).
// A (M, K): element (m, k) at m*sam + k*sak; B (K, N): (k, n) at k*sbk + n*sbn; batch strides sa, sb, sc.
__kernel void systolic_gemm(__global const TYPE* restrict A, __global const TYPE* restrict B,
                            __global OUT* restrict Cm, int M, int N, int K,
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
#if INT_OUT
      Cm[bt * sc + (long)(m0 + i) * ldc + n0 + j] = acc[i][j];
#else
      Cm[bt * sc + (long)(m0 + i) * ldc + n0 + j] = scale * (float)acc[i][j];
#endif
}

// softmax_rows_f32: scores (rows of length S, in place) -> softmax(scale * s + mask) with the causal mask,
// streamed: one pass for the running max and sum, one to write. Rows come as (B*Hkv, rep*L): the rep query heads
// that share key/value head hk are stacked (grouped-query attention), so row r is query i = r % L of head
// h = hk*rep + (r / L) % rep. Causal is top-left: query i sees keys j <= i. The optional additive mask M
// (Bm, Hm, L, S) has batch/head strides mb_stride/mh_stride (0 where it broadcasts), -inf where masked out.
// NaN and inf as in the reference: a -inf score gets probability 0; a row with a NaN or +inf score is NaN; a row
// with nothing but -inf scores has probabilities 0 (PyTorch's safe softmax). Tested on the bits:
// -cl-fast-relaxed-math lets a compiler assume floats are finite.
#define NEG_INF_BITS 0xff800000u
#define NAN_OR_POS_INF(u) (((u) & 0x7fffffffu) >= 0x7f800000u && (u) != NEG_INF_BITS)
__kernel void softmax_rows_f32(__global float* restrict s, int L, int S, int rep, int Hkv, float scale,
                               int causal, __global const float* restrict M, int has_mask, long mb_stride,
                               long mh_stride) {
  long row = get_global_id(0);
  __global float* x = s + row * S;
  long bhk = row / ((long)rep * L);
  int rr = (int)(row % ((long)rep * L)), i = rr % L;
  int b = (int)(bhk / Hkv), h = (int)(bhk % Hkv) * rep + rr / L;
  __global const float* mr = M + b * mb_stride + h * mh_stride + (long)i * S;
  int last = causal ? min(i, S - 1) : S - 1;
  float m = 0.0f, l = 0.0f;
  int seen = 0, bad = 0;
  for (int j = 0; j <= last; j++) {
    float v = scale * x[j] + (has_mask ? mr[j] : 0.0f);
    uint u = as_uint(v);
    bad |= NAN_OR_POS_INF(u);
    if (u == NEG_INF_BITS || NAN_OR_POS_INF(u)) continue;
    if (!seen || v > m) { l = seen ? l * exp(m - v) : 0.0f; m = v; seen = 1; }
    l += exp(v - m);
  }
  for (int j = 0; j < S; j++) {
    float v = scale * x[j] + (has_mask ? mr[j] : 0.0f);
    int keep = seen && j <= last && as_uint(v) != NEG_INF_BITS;
    x[j] = bad ? as_float(0x7fc00000u) : keep ? exp(v - m) / l : 0.0f;
  }
}
