#include "fl.h"

/* ---- causal self-attention with rotate-half RoPE ----------------------------------------------
 * qkv [B*T, 3*H*hd]: row b*T+t holds q (cols h*hd+j), k (offset H*hd), v (offset 2*H*hd).
 * cos/sin [T, hd/2]: angle tables for positions 0..T-1.
 * q' = rope(q) * scale, k' = rope(k); P = softmax over j <= i of q'_i . k'_j (P = 0 for j > i,
 * exactly what adding a -1e9 mask gives in float32); o_i = sum_j P_ij v_j, written to o [B*T, H*hd]
 * at row b*T+i, cols h*hd. P [B*H, T, T] is saved for the backward pass.
 *
 * Each (batch, head) unit works in local buffers padded with zeros to Tp, hdp (multiples of 16),
 * so the two micro-kernels below run on whole 16-float vectors; padding adds zeros to every sum. */

/* C[i][j] = sum_c A[i][c] * Bt[c][j] for rows i in [i0, i0+8) and j < jn (jn a multiple of 16).
 * A [.][hdp], Bt [hdp][Tp], C [.][Tp]. Eight independent accumulators keep both FMA ports busy. */
static void mk_abt(const float *A, const float *Bt, float *C, int i0, int jn, int hdp, int Tp) {
  const float *a = A + (i64)i0 * hdp;
  for (int j = 0; j < jn; j += VL) {
    v16 c[8];
    for (int r = 0; r < 8; r++) c[r] = vsplat(0.f);
    for (int k = 0; k < hdp; k++) {
      const v16 b = vload(Bt + (i64)k * Tp + j);
#pragma GCC unroll 8
      for (int r = 0; r < 8; r++) c[r] += vsplat(a[(i64)r * hdp + k]) * b;
    }
    for (int r = 0; r < 8; r++) vstore(C + (i64)(i0 + r) * Tp + j, c[r]);
  }
}

/* O[i][:] = sum_{j in [j0, j1)} P(i, j) * V[j][:] for rows i in [i0, i0+4), where P(i, j) =
 * P[i*pr + j*pc] (pr = Tp, pc = 1 for P itself; pr = 1, pc = Tp for its transpose). V [.][hdp],
 * O [.][hdp]; column blocks of 32. */
static void mk_pv(const float *P, i64 pr, i64 pc, const float *V, float *O, int i0, int j0, int j1, int hdp) {
  for (int cb = 0; cb < hdp; cb += 2 * VL) {
    const int two = cb + VL < hdp;
    v16 a00 = vsplat(0.f), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    const float *p0 = P + (i64)i0 * pr, *p1 = p0 + pr, *p2 = p1 + pr, *p3 = p2 + pr;
    for (int j = j0; j < j1; j++) {
      const float *vj = V + (i64)j * hdp + cb;
      const v16 v0 = vload(vj), v1 = two ? vload(vj + VL) : vsplat(0.f);
      const i64 jo = (i64)j * pc;
      const v16 s0 = vsplat(p0[jo]), s1 = vsplat(p1[jo]), s2 = vsplat(p2[jo]), s3 = vsplat(p3[jo]);
      a00 += s0 * v0;
      a01 += s0 * v1;
      a10 += s1 * v0;
      a11 += s1 * v1;
      a20 += s2 * v0;
      a21 += s2 * v1;
      a30 += s3 * v0;
      a31 += s3 * v1;
    }
    float *o = O + (i64)i0 * hdp + cb;
    vstore(o, a00);
    vstore(o + hdp, a10);
    vstore(o + 2 * hdp, a20);
    vstore(o + 3 * hdp, a30);
    if (two) {
      vstore(o + VL, a01);
      vstore(o + hdp + VL, a11);
      vstore(o + 2 * hdp + VL, a21);
      vstore(o + 3 * hdp + VL, a31);
    }
  }
}

/* Row softmax of s[0..i] in place, vectorised; entries i+1..Tp-1 become 0. */
static void causal_softmax_row(float *s, int i, int Tp) {
  const int n = i + 1, nb = (n + VL - 1) / VL;
  const v16 neg = vsplat(-3.4e38f), zero = vsplat(0.f);
  v16 mv = neg;
  for (int b = 0; b < nb; b++) {
    const v16i valid = (lanes() + b * VL) < n;
    const v16 x = vsel(valid, vload(s + b * VL), neg);
    mv = vsel(x > mv, x, mv);
  }
  const v16 m = vsplat(hmax(mv));
  v16 sum = zero;
  for (int b = 0; b < nb; b++) {
    const v16i valid = (lanes() + b * VL) < n;
    const v16 e = vsel(valid, vexp(vload(s + b * VL) - m), zero);
    sum += e;
    vstore(s + b * VL, e);
  }
  const v16 inv = vsplat(1.f / hsum(sum));
  for (int b = 0; b < nb; b++) vstore(s + b * VL, vload(s + b * VL) * inv);
  for (int j = nb * VL; j < Tp; j++) s[j] = 0.f;
}

static inline int round_up(int x, int m) { return (x + m - 1) / m * m; }

/* Loads rope(src rows) * scale into dst [Tp][hdp] (zero padding already in dst). */
static void rope_rows(const float *src, i64 stride, float *dst, const float *cs, const float *sn, int T, int hd,
                      int hdp, float scale) {
  const int half = hd / 2;
  for (int t = 0; t < T; t++) {
    const float *s = src + (i64)t * stride;
    float *d = dst + (i64)t * hdp;
    const float *c = cs + (i64)t * half, *n = sn + (i64)t * half;
    for (int j = 0; j < half; j++) {
      const float x1 = s[j], x2 = s[j + half];
      d[j] = (x1 * c[j] - x2 * n[j]) * scale;
      d[j + half] = (x1 * n[j] + x2 * c[j]) * scale;
    }
  }
}

/* Transpose of rope: given the gradient dy [T][hdp] of y = rope(x) * scale, writes dx into dst (stride). */
static void rope_rows_bwd(const float *dy, float *dst, i64 stride, const float *cs, const float *sn, int T, int hd,
                          int hdp, float scale) {
  const int half = hd / 2;
  for (int t = 0; t < T; t++) {
    const float *g = dy + (i64)t * hdp;
    float *d = dst + (i64)t * stride;
    const float *c = cs + (i64)t * half, *n = sn + (i64)t * half;
    for (int j = 0; j < half; j++) {
      const float g1 = g[j] * scale, g2 = g[j + half] * scale;
      d[j] = g1 * c[j] + g2 * n[j];
      d[j + half] = g2 * c[j] - g1 * n[j];
    }
  }
}

/* dst [cols][ldd] = transpose of src [rows][lds] (rows x cols block). */
static void transpose_into(const float *src, int lds, float *dst, int ldd, int rows, int cols) {
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) dst[(i64)c * ldd + r] = src[(i64)r * lds + c];
}

void fl_attention_fwd(const float *qkv, const float *cs, const float *sn, float *o, float *P, int B, int T, int H,
                      int hd, float scale) {
  const int D = H * hd, Tp = round_up(T, VL), hdp = round_up(hd, VL);
  const i64 rs = 3 * (i64)D;
#pragma omp parallel
  {
    const size_t th = (size_t)Tp * hdp;
    float *q = (float *)calloc(th, sizeof(float)), *k = (float *)calloc(th, sizeof(float));
    float *kt = (float *)calloc(th, sizeof(float)), *v = (float *)calloc(th, sizeof(float));
    float *ob = (float *)calloc(th, sizeof(float)), *S = (float *)calloc((size_t)Tp * Tp, sizeof(float));
#pragma omp for schedule(static)
    for (int u = 0; u < B * H; u++) {
      const int b = u / H, h = u % H;
      const float *base = qkv + (i64)b * T * rs;
      rope_rows(base + (i64)h * hd, rs, q, cs, sn, T, hd, hdp, scale);
      rope_rows(base + D + (i64)h * hd, rs, k, cs, sn, T, hd, hdp, 1.f);
      transpose_into(k, hdp, kt, Tp, T, hdp);
      for (int t = 0; t < T; t++) memcpy(v + (i64)t * hdp, base + 2 * (i64)D + (i64)h * hd + (i64)t * rs, sizeof(float) * hd);
      for (int i0 = 0; i0 < T; i0 += 8) {
        const int i1 = i0 + 8 < T ? i0 + 8 : T;
        mk_abt(q, kt, S, i0, round_up(i1, VL), hdp, Tp);
        for (int i = i0; i < i1; i++) causal_softmax_row(S + (i64)i * Tp, i, Tp);
        for (int i = i1; i < i0 + 8; i++) memset(S + (i64)i * Tp, 0, sizeof(float) * Tp);
        mk_pv(S, Tp, 1, v, ob, i0, 0, i1, hdp);
        mk_pv(S, Tp, 1, v, ob, i0 + 4, 0, i1, hdp);
      }
      float *Pu = P + (i64)u * T * T;
      for (int i = 0; i < T; i++) {
        memcpy(Pu + (i64)i * T, S + (i64)i * Tp, sizeof(float) * T);
        memcpy(o + ((i64)b * T + i) * D + (i64)h * hd, ob + (i64)i * hdp, sizeof(float) * hd);
      }
    }
    free(q);
    free(k);
    free(kt);
    free(v);
    free(ob);
    free(S);
  }
}

/* Gradient of fl_attention_fwd: dout [B*T, H*hd] and the saved P -> dqkv [B*T, 3*H*hd].
 * dP = dO V^T; dS = P (dP - rowsum(P dP)); dq' = dS k'; dk' = dS^T q'; dv = P^T dO; then RoPE^T. */
void fl_attention_bwd(const float *dout, const float *qkv, const float *P, const float *cs, const float *sn,
                      float *dqkv, int B, int T, int H, int hd, float scale) {
  const int D = H * hd, Tp = round_up(T, VL), hdp = round_up(hd, VL);
  const i64 rs = 3 * (i64)D;
#pragma omp parallel
  {
    const size_t th = (size_t)Tp * hdp, tt = (size_t)Tp * Tp;
    float *q = (float *)calloc(th, sizeof(float)), *k = (float *)calloc(th, sizeof(float));
    float *vt = (float *)calloc(th, sizeof(float)), *dO = (float *)calloc(th, sizeof(float));
    float *dq = (float *)calloc(th, sizeof(float)), *dk = (float *)calloc(th, sizeof(float));
    float *dv = (float *)calloc(th, sizeof(float));
    float *Pl = (float *)calloc(tt, sizeof(float)), *dS = (float *)calloc(tt, sizeof(float));
#pragma omp for schedule(static)
    for (int u = 0; u < B * H; u++) {
      const int b = u / H, h = u % H;
      const float *base = qkv + (i64)b * T * rs;
      rope_rows(base + (i64)h * hd, rs, q, cs, sn, T, hd, hdp, scale);
      rope_rows(base + D + (i64)h * hd, rs, k, cs, sn, T, hd, hdp, 1.f);
      for (int t = 0; t < T; t++) {
        const float *vr = base + 2 * (i64)D + (i64)h * hd + (i64)t * rs;
        for (int c = 0; c < hd; c++) vt[(i64)c * Tp + t] = vr[c];
        memcpy(dO + (i64)t * hdp, dout + ((i64)b * T + t) * D + (i64)h * hd, sizeof(float) * hd);
      }
      const float *Pu = P + (i64)u * T * T;
      for (int i = 0; i < T; i++) memcpy(Pl + (i64)i * Tp, Pu + (i64)i * T, sizeof(float) * T);
      for (int i0 = 0; i0 < T; i0 += 8) {
        const int i1 = i0 + 8 < T ? i0 + 8 : T, jn = round_up(i1, VL);
        mk_abt(dO, vt, dS, i0, jn, hdp, Tp); /* dP for rows i0..i0+7 */
        for (int i = i0; i < i0 + 8; i++) {
          float *ds = dS + (i64)i * Tp;
          if (i >= T) {
            memset(ds, 0, sizeof(float) * Tp);
            continue;
          }
          const float *p = Pl + (i64)i * Tp;
          const int nb = (i + 1 + VL - 1) / VL; /* p is 0 beyond i (and in the padding) */
          v16 acc = vsplat(0.f);
          for (int b = 0; b < nb; b++) acc += vload(p + b * VL) * vload(ds + b * VL);
          const v16 di = vsplat(hsum(acc));
          for (int b = 0; b < nb; b++) vstore(ds + b * VL, vload(p + b * VL) * (vload(ds + b * VL) - di));
          for (int j = nb * VL; j < Tp; j++) ds[j] = 0.f;
        }
        mk_pv(dS, Tp, 1, k, dq, i0, 0, i1, hdp);
        mk_pv(dS, Tp, 1, k, dq, i0 + 4, 0, i1, hdp);
      }
      /* dk_j = sum_{i >= j} dS[i][j] q_i and dv_j = sum_{i >= j} P[i][j] dO_i: the transposed access of mk_pv. */
      for (int j0 = 0; j0 < T; j0 += 4) {
        mk_pv(dS, 1, Tp, q, dk, j0, j0, T, hdp);
        mk_pv(Pl, 1, Tp, dO, dv, j0, j0, T, hdp);
      }
      float *dbase = dqkv + (i64)b * T * rs;
      rope_rows_bwd(dq, dbase + (i64)h * hd, rs, cs, sn, T, hd, hdp, scale);
      rope_rows_bwd(dk, dbase + D + (i64)h * hd, rs, cs, sn, T, hd, hdp, 1.f);
      for (int t = 0; t < T; t++)
        memcpy(dbase + 2 * (i64)D + (i64)h * hd + (i64)t * rs, dv + (i64)t * hdp, sizeof(float) * hd);
    }
    free(q);
    free(k);
    free(vt);
    free(dO);
    free(dq);
    free(dk);
    free(dv);
    free(Pl);
    free(dS);
  }
}
