#include "fl.h"

/* ---- row movement and element-wise steps of the sparse mixture op (lib/models/sparse_train.ts) -----------
 * Copies and scatter-adds of rows between token-major arrays and an op's gathered rows: what its
 * GatherV2 row copies and UnsortedSegmentSum scatters did in JS loops, with the same float32 additions in the
 * same order for every element. Each step is a range function (rows, elements or 16-column blocks: units whose
 * results do not depend on how they are shared among threads), run in fl_moe_prog's single parallel region
 * (moe_prog.h). */

#define COLS 16    /* columns per block of the scatters (each column's additions stay in row order) */
#define ROWS 32    /* rows per unit of the row-wise steps */
#define ELEMS 4096 /* elements per unit of the element-wise steps */

/* out[i, 0..d) = x[rows[i], off..off+d) for i in [i0, i1) (x rows of width w). */
static void gather_range(const float *x, const int32_t *rows, float *out, int i0, int i1, int w, int off, int d) {
  for (int i = i0; i < i1; i++) memcpy(out + (i64)i * d, x + (i64)rows[i] * w + off, sizeof(float) * (size_t)d);
}

/* SwiGLU forward of elements [i0, i1): sig = sigmoid(a) (in double, as the Sigmoid kernel), h = (a * sig) * b,
 * each product rounded to float32. */
__attribute__((optimize("fp-contract=off"))) static void swiglu_fwd_range(const float *a, const float *b, float *sig,
                                                                           float *h, i64 i0, i64 i1) {
  sigmoid_exact(a, sig, i0, i1);
  for (i64 i = i0; i < i1; i++) h[i] = (a[i] * sig[i]) * b[i];
}

/* Its gradient as the tape's kernels compute it, element by element in float32: silu = a*sig, ds = dh*b,
 * db = dh*silu, then mul(a, sig)'s gradient da = ds*sig, dsig = ds*a, Sigmoid's dsig*(sig*(1 - sig)), and
 * da + that. */
__attribute__((optimize("fp-contract=off"))) static void swiglu_bwd_range(const float *a, const float *b,
                                                                           const float *sig, const float *dh,
                                                                           float *da, float *db, i64 i0, i64 i1) {
  for (i64 i = i0; i < i1; i++) {
    const float s = sig[i], silu = a[i] * s, ds = dh[i] * b[i];
    db[i] = dh[i] * silu;
    const float da0 = ds * s, dsig = ds * a[i], om = 1.f - s, t = s * om, t2 = dsig * t;
    da[i] = da0 + t2;
  }
}

/* Column block of y[rows[i], off + j] += o[i, j] * c[i] (the product rounded to float32 first, as the Multiply
 * kernel's output), rows in order. */
__attribute__((optimize("fp-contract=off"))) static void scatter_weighted_block(float *y, const float *o,
                                                                                 const float *c, const int32_t *rows,
                                                                                 int R, int w, int off, int d,
                                                                                 int blk) {
  const int j0 = blk * COLS, j1 = j0 + COLS < d ? j0 + COLS : d;
  for (int i = 0; i < R; i++) {
    float *yr = y + (i64)rows[i] * w + off;
    const float *orow = o + (i64)i * d, ci = c[i];
    for (int j = j0; j < j1; j++) {
      const float t = orow[j] * ci;
      yr[j] += t;
    }
  }
}

/* Rows [i0, i1) of the weighting's gradient: dO[i, j] = dy[rows[i], off + j] * c[i], and dc[i] =
 * Σ_j dy[rows[i], off + j] * o[i, j] (float32 products summed in double in column order, rounded: the Multiply
 * and Sum kernels' bits). */
__attribute__((optimize("fp-contract=off"))) static void weighted_bwd_range(const float *dy, const int32_t *rows,
                                                                             const float *c, const float *o,
                                                                             float *dO, float *dc, int i0, int i1,
                                                                             int w, int off, int d) {
  for (int i = i0; i < i1; i++) {
    const float *dyr = dy + (i64)rows[i] * w + off, *orow = o + (i64)i * d;
    float *dOr = dO + (i64)i * d;
    const float ci = c[i];
    double acc = 0.0;
    for (int j = 0; j < d; j++) {
      dOr[j] = dyr[j] * ci;
      const float t = dyr[j] * orow[j];
      acc += (double)t;
    }
    dc[i] = (float)acc;
  }
}

/* Column block of y[rows[i], off + j] += (u[i, j] + v[i, j]): the Add kernel's float32 sum, then the scatter's
 * addition (the bits of an Add then fl_scatter_add_rows, without the intermediate array). */
__attribute__((optimize("fp-contract=off"))) static void scatter_add2_block(float *y, const float *u, const float *v,
                                                                             const int32_t *rows, int R, int w,
                                                                             int off, int d, int blk) {
  const int j0 = blk * COLS, j1 = j0 + COLS < d ? j0 + COLS : d;
  for (int i = 0; i < R; i++) {
    float *yr = y + (i64)rows[i] * w + off;
    const float *ur = u + (i64)i * d, *vr = v + (i64)i * d;
    for (int j = j0; j < j1; j++) {
      const float t = ur[j] + vr[j];
      yr[j] += t;
    }
  }
}

/* ---- FineRMoE's training routing (lib/models/finermoe_train_routing.ts): its float32 steps in C --------------
 * Each line does what the JS it replaced did with Math.fround: every float32 operation rounded once (C float
 * arithmetic, no contraction), the sums in double in index order, rounded once at the end. */

/* counts[g, e] = Σ_{t in sequence g} mask[t, e] (0/1 values: exact), for N / T sequences of T tokens. */
void fl_route_counts(const float *mask, float *counts, int N, int E, int T) {
  memset(counts, 0, sizeof(float) * (size_t)(N / T) * (size_t)E);
  for (int t = 0; t < N; t++)
    for (int e = 0; e < E; e++) counts[(i64)(t / T) * E + e] += mask[(i64)t * E + e];
}

/* The balance loss Σ_{g,e} counts[g,e]·mean_t probs[t,e] (each term probs/T rounded, the mean's sum in double,
 * each product rounded, the whole sum in double), rounded, times c0. */
__attribute__((optimize("fp-contract=off"))) float fl_balance_fwd(const float *probs, const float *counts, int N,
                                                                   int E, int T, float c0) {
  double acc = 0.0;
  for (int g = 0; g < N / T; g++)
    for (int e = 0; e < E; e++) {
      double m = 0.0;
      for (int t = g * T; t < (g + 1) * T; t++) m += (double)(probs[(i64)t * E + e] / (float)T);
      const float term = counts[(i64)g * E + e] * (float)m;
      acc += (double)term;
    }
  return (float)acc * c0;
}

/* The softmax gradient as tfjs computes it: out = dy·y − (Σ_row dy·y)·y, per row of n (the row sum in double);
 * out may be dy (each element is read before it is written). */
__attribute__((optimize("fp-contract=off"))) void fl_softmax_grad(const float *dy, const float *y, float *out,
                                                                   int rows, int n) {
  for (int r = 0; r < rows; r++) {
    const float *dr = dy + (i64)r * n, *yr = y + (i64)r * n;
    float *o = out + (i64)r * n;
    double acc = 0.0;
    for (int j = 0; j < n; j++) {
      o[j] = dr[j] * yr[j];
      acc += (double)o[j];
    }
    const float s = (float)acc;
    for (int j = 0; j < n; j++) {
      const float sy = s * yr[j];
      o[j] = o[j] - sy;
    }
  }
}

/* The balance loss's gradient with respect to the logits: dprobs[t, e] = (ds·counts[g(t), e]) / T, written into
 * out, then through the softmax in place (fl_softmax_grad reads each dy element before writing it). */
__attribute__((optimize("fp-contract=off"))) void fl_balance_bwd(float ds, const float *counts, const float *probs,
                                                                  float *out, int N, int E, int T) {
  for (int t = 0; t < N; t++)
    for (int e = 0; e < E; e++) {
      const float p = ds * counts[(i64)(t / T) * E + e];
      out[(i64)t * E + e] = p / (float)T;
    }
  fl_softmax_grad(out, probs, out, N, E);
}

/* zm = z + (mask − 1)·1e9 (the masked logits of the combination softmax), n elements. */
__attribute__((optimize("fp-contract=off"))) void fl_mask_logits(const float *z, const float *mask, float *zm, int n) {
  for (int i = 0; i < n; i++) {
    const float off = (mask[i] - 1.f) * 1e9f;
    zm[i] = z[i] + off;
  }
}

#define NB(d) (((d) + COLS - 1) / COLS)

#include "moe_prog.h"
