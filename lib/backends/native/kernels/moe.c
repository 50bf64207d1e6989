#include "fl.h"

/* ---- row movement of the sparse mixture op (lib/models/sparse_train.ts) ------------------------
 * Copies and scatter-adds of rows between token-major arrays and an op's gathered rows: what its
 * GatherV2 row copies and UnsortedSegmentSum scatters did in JS loops, with the same float32 additions in the
 * same order for every element. */

/* out[i, 0..d) = x[rows[i], off..off+d) (x rows of width w). */
void fl_gather_rows(const float *x, const int32_t *rows, float *out, int R, int w, int off, int d) {
#pragma omp parallel for schedule(static) if ((i64)R * d > 65536)
  for (int i = 0; i < R; i++) memcpy(out + (i64)i * d, x + (i64)rows[i] * w + off, sizeof(float) * (size_t)d);
}

/* y[rows[i], off..off+d) += v[i, 0..d) for i = 0..R-1 in order (a token may repeat: each column's additions
 * stay in row order; the threads split the columns). */
void fl_scatter_add_rows(float *y, const float *v, const int32_t *rows, int R, int w, int off, int d) {
  const int cb = 16, nb = (d + cb - 1) / cb;
#pragma omp parallel for schedule(static) if ((i64)R * d > 65536)
  for (int b = 0; b < nb; b++) {
    const int j0 = b * cb, j1 = j0 + cb < d ? j0 + cb : d;
    for (int i = 0; i < R; i++) {
      float *yr = y + (i64)rows[i] * w + off;
      const float *vr = v + (i64)i * d;
      for (int j = j0; j < j1; j++) yr[j] += vr[j];
    }
  }
}

/* SwiGLU of the gathered rows, the element-wise kernels' steps fused: sig = sigmoid(a) (in double, as the
 * Sigmoid kernel), h = (a * sig) * b, each product rounded to float32. */
__attribute__((optimize("fp-contract=off"))) void fl_swiglu_rows_fwd(const float *a, const float *b, float *sig,
                                                                      float *h, int n) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int i = 0; i < n; i++) {
    const float s = (float)(1.0 / (1.0 + exp(-(double)a[i])));
    sig[i] = s;
    h[i] = (a[i] * s) * b[i];
  }
}

/* Its gradient as the tape's kernels compute it, element by element in float32: silu = a*sig, ds = dh*b,
 * db = dh*silu, then mul(a, sig)'s gradient da = ds*sig, dsig = ds*a, Sigmoid's dsig*(sig*(1 - sig)), and
 * da + that. */
__attribute__((optimize("fp-contract=off"))) void fl_swiglu_rows_bwd(const float *a, const float *b,
                                                                      const float *sig, const float *dh, float *da,
                                                                      float *db, int n) {
#pragma omp parallel for schedule(static) if (n > 16384)
  for (int i = 0; i < n; i++) {
    const float s = sig[i], silu = a[i] * s, ds = dh[i] * b[i];
    db[i] = dh[i] * silu;
    const float da0 = ds * s, dsig = ds * a[i], om = 1.f - s, t = s * om, t2 = dsig * t;
    da[i] = da0 + t2;
  }
}

/* The forward's weighting and scatter fused: y[rows[i], off + j] += o[i, j] * c[i] (the product rounded to
 * float32 first, as the Multiply kernel's output), rows in order for every column; the threads split the
 * columns. */
__attribute__((optimize("fp-contract=off"))) void fl_scatter_weighted_rows(float *y, const float *o, const float *c,
                                                                            const int32_t *rows, int R, int w,
                                                                            int off, int d) {
  const int cb = 16, nb = (d + cb - 1) / cb;
#pragma omp parallel for schedule(static) if ((i64)R * d > 16384)
  for (int b = 0; b < nb; b++) {
    const int j0 = b * cb, j1 = j0 + cb < d ? j0 + cb : d;
    for (int i = 0; i < R; i++) {
      float *yr = y + (i64)rows[i] * w + off;
      const float *orow = o + (i64)i * d, ci = c[i];
      for (int j = j0; j < j1; j++) {
        const float t = orow[j] * ci;
        yr[j] += t;
      }
    }
  }
}

/* The weighting's gradient from dy's rows (dy rows of width w, the slice's columns from off): dO[i, j] =
 * dy[rows[i], off + j] * c[i], and dc[i] = Σ_j dy[rows[i], off + j] * o[i, j] (float32 products summed in
 * double in column order, rounded: the Multiply and Sum kernels' bits). */
__attribute__((optimize("fp-contract=off"))) void fl_weighted_rows_bwd(const float *dy, const int32_t *rows,
                                                                        const float *c, const float *o, float *dO,
                                                                        float *dc, int R, int w, int off, int d) {
#pragma omp parallel for schedule(static) if ((i64)R * d > 16384)
  for (int i = 0; i < R; i++) {
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

/* y[rows[i], off..off+d) += (u[i, j] + v[i, j]) for i = 0..R-1 in order: the Add kernel's float32 sum of the
 * two row arrays, then fl_scatter_add_rows's additions (same bits as fl_add then fl_scatter_add_rows, one pass,
 * no intermediate array); the threads split the columns. */
__attribute__((optimize("fp-contract=off"))) void fl_scatter_add2_rows(float *y, const float *u, const float *v,
                                                                        const int32_t *rows, int R, int w, int off,
                                                                        int d) {
  const int cb = 16, nb = (d + cb - 1) / cb;
#pragma omp parallel for schedule(static) if ((i64)R * d > 16384)
  for (int b = 0; b < nb; b++) {
    const int j0 = b * cb, j1 = j0 + cb < d ? j0 + cb : d;
    for (int i = 0; i < R; i++) {
      float *yr = y + (i64)rows[i] * w + off;
      const float *ur = u + (i64)i * d, *vr = v + (i64)i * d;
      for (int j = j0; j < j1; j++) {
        const float t = ur[j] + vr[j];
        yr[j] += t;
      }
    }
  }
}
