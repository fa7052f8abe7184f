// Flash-style attention for OpenCL CPU devices (PoCL), float32: one pass over the keys with an online softmax,
// never storing the (L, S) score matrix. Q (B*H, L, D), K (B*Hkv, S, D), V (B*Hkv, S, DVAL), O (B*H, L, DVAL);
// query head h of batch b reads key/value head h / (H / Hkv) of b (grouped-query attention). K is first
// transposed to Kt (B*Hkv, D, Sp) so that 8 consecutive keys form one float8 (Sp = S rounded up to 8, zero
// padded). An optional additive mask M (Bm, Hm, L, S) (-inf: masked out) is added to the scaled scores; a row
// that sees no key is written as 0, as PyTorch does.
// #defines: D (query/key head dim), DVAL (value head dim), BQ (query rows per work-item), VW (vector width over
// DVAL: 8, 4 or 1; divides DVAL).
// Builtins such as fmax/mad are library calls in PoCL 3.0, so comparisons are written out; exp is kept.
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#if VW == 1
typedef float vec;
#else
typedef CAT(float, VW) vec;
#endif
#define DV (DVAL / VW)

// transpose_k_f32: K (BH, S, D) -> Kt (BH, D, Sp). Work-item (j, d, bh).
__kernel void transpose_k_f32(__global const float* restrict K, __global float* restrict Kt, int S, int Sp) {
  int j = get_global_id(0), d = get_global_id(1), bh = get_global_id(2);
  Kt[((long)bh * D + d) * Sp + j] = j < S ? K[((long)bh * S + j) * D + d] : 0.0f;
}

// transpose8_k_f32: the same transpose in 8x8 blocks (D a multiple of 8, Sp of 8 already): work-item (jb, db, bh)
// reads 8 consecutive values of 8 key rows as float8 and writes them as float8 runs of 8 keys, so neither side
// of the copy is a strided access of single floats (the simple kernel above reads K a float per row).
__kernel void transpose8_k_f32(__global const float* restrict K, __global float* restrict Kt, int S, int Sp) {
  int j0 = get_global_id(0) * 8, d0 = get_global_id(1) * 8, bh = get_global_id(2);
  float b[8][8];
  for (int t = 0; t < 8; t++)
    vstore8(j0 + t < S ? vload8(0, K + ((long)bh * S + j0 + t) * D + d0) : (float8)(0.0f), 0, b[t]);
  __global float* dst = Kt + ((long)bh * D + d0) * Sp + j0;
  for (int u = 0; u < 8; u++)
    vstore8((float8)(b[0][u], b[1][u], b[2][u], b[3][u], b[4][u], b[5][u], b[6][u], b[7][u]), 0, dst + (long)u * Sp);
}

// value_poison_f32: P (B*Hkv, DVAL) = NaN where column d of key/value head bhk's V (S, DVAL) holds a NaN or inf,
// else 0. The reference multiplies every value row by its probability, masked keys included, and 0 * inf is NaN:
// such a column is non-finite in every output row of the query heads reading it. Tested on the bits, which
// -cl-fast-relaxed-math (finite math only) leaves alone. Work-item (bhk): one pass over the head's V.
__kernel void value_poison_f32(__global const float* restrict V, __global float* restrict P, int S) {
  int bh = get_global_id(0);
  __global const uint* v = (__global const uint*)(V + (long)bh * S * DVAL);
  uint bad[DVAL];
  for (int d = 0; d < DVAL; d++) bad[d] = 0;
  for (int j = 0; j < S; j++)
    for (int d = 0; d < DVAL; d++) bad[d] |= (v[(long)j * DVAL + d] & 0x7f800000u) == 0x7f800000u;
  for (int d = 0; d < DVAL; d++) P[bh * DVAL + d] = bad[d] ? as_float(0x7fc00000u) : 0.0f;
}

// attention_f32: rows i0 .. i0+BQ-1 of head bh. Query i sees keys j <= i when causal (top-left, whatever L and
// S are), else all j < S. M's batch and head strides are 0 where it broadcasts (mb_stride, mh_stride).
__kernel void attention_f32(__global const float* restrict Q, __global const float* restrict Kt,
                            __global const float* restrict V, __global const float* restrict P,
                            __global float* restrict O, __global const float* restrict M, int L, int S, int Sp,
                            int H, int Hkv, float scale, int causal, int has_mask, long mb_stride, long mh_stride) {
  int i0 = get_global_id(0) * BQ, bh = get_global_id(1);
  int b = bh / H, h = bh % H;
  long bhk = (long)b * Hkv + h / (H / Hkv);
  __global const float* q = Q + (long)bh * L * D;
  __global const float* kt = Kt + bhk * D * Sp;
  __global const float* v = V + bhk * S * DVAL;
  __global const float* mrow0 = M + b * mb_stride + h * mh_stride;  // row i at + i * S
  float qs[BQ][D];     // scaled queries; rows past L repeat row L-1 and are never written
  vec o[BQ][DV];       // unnormalised outputs
  float m[BQ], l[BQ];  // running max and running sum of exp
  int lim[BQ];         // last key each row may see
  for (int i = 0; i < BQ; i++) {
    int ii = min(i0 + i, L - 1);
    for (int d = 0; d < D; d++) qs[i][d] = q[(long)ii * D + d] * scale;
    for (int d = 0; d < DV; d++) o[i][d] = (vec)(0.0f);
    m[i] = -INFINITY;
    l[i] = 0.0f;
    lim[i] = causal ? min(ii, S - 1) : S - 1;
  }
  int jend = causal ? min(S, i0 + BQ) : S;
  for (int j0 = 0; j0 < jend; j0 += 8) {
    float8 s[BQ];
#pragma unroll
    for (int i = 0; i < BQ; i++) s[i] = (float8)(0.0f);
    for (int d = 0; d < D; d++) {  // s[i] = q_i . k_{j0..j0+7}
      float8 kv = *((__global const float8*)(kt + (long)d * Sp + j0));
#pragma unroll
      for (int i = 0; i < BQ; i++) s[i] += qs[i][d] * kv;
    }
    float p[BQ][8];
    int8 jj = (int8)(j0) + (int8)(0, 1, 2, 3, 4, 5, 6, 7);
#pragma unroll
    for (int i = 0; i < BQ; i++) {
      float8 si = jj > (int8)(lim[i]) ? (float8)(-INFINITY) : s[i];
      float t[8];
      *((float8*)t) = si;
      if (has_mask) {
        __global const float* mr = mrow0 + (long)min(i0 + i, L - 1) * S;
        for (int j = 0; j < 8; j++) t[j] += j0 + j < S ? mr[j0 + j] : 0.0f;
        si = *((float8*)t);
      }
      float mx = m[i];
      for (int j = 0; j < 8; j++) mx = t[j] > mx ? t[j] : mx;
      float mref = as_uint(mx) == 0xff800000u ? 0.0f : mx;  // only -inf so far: no weight yet, and no NaN
      float alpha = exp(m[i] - mref);  // 0 on the first visible block (m = -inf)
      float8 pe = exp(si - (float8)(mref));
      *((float8*)p[i]) = pe;
      l[i] = l[i] * alpha + (pe.s0 + pe.s1 + pe.s2 + pe.s3 + pe.s4 + pe.s5 + pe.s6 + pe.s7);
      m[i] = mx;
      for (int d = 0; d < DV; d++) o[i][d] *= alpha;
    }
    for (int d = 0; d < DV; d++) {  // o_i += sum_j p_ij v_j, one vector of D at a time
      vec vv[8];
#pragma unroll
      for (int j = 0; j < 8; j++) vv[j] = *((__global const vec*)(v + (long)min(j0 + j, S - 1) * DVAL) + d);
#pragma unroll
      for (int i = 0; i < BQ; i++) {
        vec acc = o[i][d];
#pragma unroll
        for (int j = 0; j < 8; j++) acc += p[i][j] * vv[j];
        o[i][d] = acc;
      }
    }
  }
  for (int i = 0; i < BQ && i0 + i < L; i++) {
    float inv = as_uint(l[i]) == 0u ? 0.0f : 1.0f / l[i];  // l = +0: only -inf scores, probabilities 0
    __global vec* out = (__global vec*)(O + ((long)bh * L + i0 + i) * DVAL);
    __global const vec* poison = (__global const vec*)(P + bhk * DVAL);
    for (int d = 0; d < DV; d++) out[d] = o[i][d] * inv + poison[d];
  }
}
