#include "fl.h"

/* ---- cross-entropy --------------------------------------------------------------------------
 * Mean over rows of -log softmax(logits)[target]; rows whose target is outside [0, V) count 0
 * (as a one-hot of an out-of-range id is all zeros). lse [N] is saved for the backward pass. */
void fl_xent_fwd(const float *logits, const int32_t *tgt, float *lse, float *loss, int N, int V) {
  float *nll = (float *)malloc(sizeof(float) * (size_t)(N > 0 ? N : 1));
#pragma omp parallel
  {
    float *e = (float *)malloc(sizeof(float) * (size_t)(V > 0 ? V : 1));
#pragma omp for schedule(static)
    for (int i = 0; i < N; i++) {
      const float *l = logits + (i64)i * V;
      const float m = exp_minus_max(l, e, V);
      float s = 0.f;
      for (int j = 0; j < V; j++) s += e[j];
      const float z = m + logf(s);
      lse[i] = z;
      const int t = tgt[i];
      nll[i] = (t >= 0 && t < V) ? z - l[t] : 0.f;
    }
    free(e);
  }
  double acc = 0.0;
  for (int i = 0; i < N; i++) acc += nll[i];
  loss[0] = (float)(acc / (double)N);
  free(nll);
}

/* dlogits = (softmax(logits) - onehot(target)) * dloss / N (rows with an out-of-range target: 0). */
void fl_xent_bwd(const float *dloss, const float *logits, const int32_t *tgt, const float *lse, float *dl, int N,
                 int V) {
  const float sc = dloss[0] / (float)N;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; i++) {
    const float *l = logits + (i64)i * V;
    float *d = dl + (i64)i * V;
    const int t = tgt[i];
    if (!(t >= 0 && t < V)) {
      for (int j = 0; j < V; j++) d[j] = 0.f;
      continue;
    }
    const float z = lse[i];
    for (int j = 0; j < V; j++) d[j] = l[j] - z;
    exp_array(d, d, V);
    for (int j = 0; j < V; j++) d[j] *= sc;
    d[t] -= sc;
  }
}

/* ---- AdamW (the formula of lib/train/optim.ts, in the same float32 order) ----------------------
 * g' = g*gscale (the global-norm clip's Multiply; gscale = 1 leaves g as it is: x*1 = x exactly);
 * m1 = m*b1 + g'*c1; v1 = v*b2 + (g'*g')*c2; p1 = p*decay - (m1 / (sqrt(v1)/sqrt_bc2 + eps)) * step,
 * with c1 = 1-b1, c2 = 1-b2, decay = 1-lr*wd (1 without decay), step = lr/bc1 computed by the caller
 * in double and rounded to float, as tfjs does with scalar operands. No FMA contraction, so each
 * operation rounds like the separate tfjs element-wise kernels. */
__attribute__((optimize("fp-contract=off"))) void fl_adamw(const float *p, const float *m, const float *v,
                                                            const float *g, float *p1, float *m1, float *v1, int n,
                                                            float b1, float c1, float b2, float c2, float sqrt_bc2,
                                                            float eps, float decay, float step, float gscale) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int i = 0; i < n; i++) {
    const float gi = g[i] * gscale;
    const float mm = m[i] * b1 + gi * c1;
    const float vv = v[i] * b2 + (gi * gi) * c2;
    m1[i] = mm;
    v1[i] = vv;
    const float denom = sqrtf(vv) / sqrt_bc2 + eps;
    p1[i] = p[i] * decay - (mm / denom) * step;
  }
}

/* ---- sums of squares of many arrays (the gradient norm) ----------------------------------------
 * out[j] = Σ_i (float)(x_j[i]²) accumulated in double in index order and rounded to float: the bits of
 * tfjs's Sum(Square(x_j)) (a float32 square per element, the Sum kernel's sequential double sum). Each
 * sum is one dependent chain; the arrays are shared among the threads (ptrs: the arrays' addresses). */
__attribute__((optimize("fp-contract=off"))) void fl_sumsq_many(const uint64_t *ptrs, const int32_t *lens,
                                                                 float *out, int count) {
#pragma omp parallel for schedule(dynamic, 1)
  for (int j = 0; j < count; j++) {
    const float *x = (const float *)(uintptr_t)ptrs[j];
    const int n = lens[j];
    double acc = 0.0;
    for (int i = 0; i < n; i++) {
      const float sq = x[i] * x[i];
      acc += (double)sq;
    }
    out[j] = (float)acc;
  }
}
