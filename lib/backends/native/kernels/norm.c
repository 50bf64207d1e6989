#include "fl.h"

/* ---- RMSNorm --------------------------------------------------------------------------------
 * y = x * rstd * g with rstd = 1 / sqrt(mean(x^2) + eps), per row of x [N, D]; rstd [N] is saved
 * for the backward pass. g = NULL: no gain (y = x * rstd). */
void fl_rmsnorm_fwd(const float *x, const float *g, float *y, float *rstd, int N, int D, float eps) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++) {
    const float *xr = x + (i64)i * D;
    float *yr = y + (i64)i * D;
    float ss = 0.f;
#pragma omp simd reduction(+ : ss)
    for (int j = 0; j < D; j++) ss += xr[j] * xr[j];
    const float r = 1.f / sqrtf(ss / (float)D + eps);
    rstd[i] = r;
    if (g) {
#pragma omp simd
      for (int j = 0; j < D; j++) yr[j] = (xr[j] * r) * g[j];
    } else {
#pragma omp simd
      for (int j = 0; j < D; j++) yr[j] = xr[j] * r;
    }
  }
}

/* dx = rstd * (dy*g - xhat * mean(dy*g*xhat)), dg = sum over rows of dy * xhat, xhat = x * rstd.
 * dg is summed per fixed 64-row chunk, then over chunks in order. g = NULL: no gain (dg unused). */
void fl_rmsnorm_bwd(const float *dy, const float *x, const float *g, const float *rstd, float *dx, float *dg, int N,
                    int D) {
  const int nch = (N + FL_CHUNK - 1) / FL_CHUNK;
  float *part = (float *)calloc((size_t)nch * D, sizeof(float));
#pragma omp parallel for schedule(static)
  for (int c = 0; c < nch; c++) {
    float *pc = part + (i64)c * D;
    const int i1 = (c + 1) * FL_CHUNK < N ? (c + 1) * FL_CHUNK : N;
    for (int i = c * FL_CHUNK; i < i1; i++) {
      const float *xr = x + (i64)i * D, *dyr = dy + (i64)i * D;
      float *dxr = dx + (i64)i * D;
      const float r = rstd[i];
      float dot = 0.f;
      if (g) {
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < D; j++) dot += dyr[j] * g[j] * (xr[j] * r);
      } else {
#pragma omp simd reduction(+ : dot)
        for (int j = 0; j < D; j++) dot += dyr[j] * (xr[j] * r);
      }
      const float mdot = dot / (float)D;
      if (g) {
#pragma omp simd
        for (int j = 0; j < D; j++) {
          const float xh = xr[j] * r;
          dxr[j] = r * (dyr[j] * g[j] - xh * mdot);
          pc[j] += dyr[j] * xh;
        }
      } else {
#pragma omp simd
        for (int j = 0; j < D; j++) dxr[j] = r * (dyr[j] - (xr[j] * r) * mdot);
      }
    }
  }
  if (dg) {
    for (int j = 0; j < D; j++) dg[j] = 0.f;
    for (int c = 0; c < nch; c++) {
      const float *pc = part + (i64)c * D;
      for (int j = 0; j < D; j++) dg[j] += pc[j];
    }
  }
  free(part);
}
