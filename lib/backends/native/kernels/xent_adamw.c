#include "fl.h"
#if defined(__AVX__)
#include <immintrin.h>
#endif

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
/* AdamW of elements [i0, i1) into the arrays p1, m1, v1 (offset o: they hold elements i0 - o ..). */
__attribute__((optimize("fp-contract=off"))) static inline void adamw_range(
    const float *restrict p, const float *restrict m, const float *restrict v, const float *restrict g,
    float *restrict p1, float *restrict m1, float *restrict v1, i64 i0, i64 i1, i64 o, const float *c) {
  const float b1 = c[0], c1 = c[1], b2 = c[2], c2 = c[3], sqrt_bc2 = c[4], eps = c[5], decay = c[6], step = c[7],
              gscale = c[8];
  for (i64 i = i0; i < i1; i++) {
    const float gi = g[i] * gscale;
    const float mm = m[i] * b1 + gi * c1;
    const float vv = v[i] * b2 + (gi * gi) * c2;
    m1[i - o] = mm;
    v1[i - o] = vv;
    const float denom = sqrtf(vv) / sqrt_bc2 + eps;
    p1[i - o] = p[i] * decay - (mm / denom) * step;
  }
}

/* 64 bytes from src to the 64-byte aligned dst, bypassing the caches where the CPU can. */
static inline void stream64(float *dst, const float *src) {
#if defined(__AVX512F__)
  _mm512_stream_ps(dst, _mm512_loadu_ps(src));
#elif defined(__AVX__)
  _mm256_stream_ps(dst, _mm256_loadu_ps(src));
  _mm256_stream_ps(dst + 8, _mm256_loadu_ps(src + 8));
#else
  memcpy(dst, src, 64);
#endif
}

/* dst[0..n) = src[0..n): 64-byte aligned blocks streamed (stream64), the unaligned ends stored plainly. */
static inline void stream_copy(float *dst, const float *src, int n) {
  const uintptr_t a = (uintptr_t)dst & 63;
  int head = a ? (int)((64 - a) / 4) : 0;
  if (a & 3 || head > n) head = n;
  int i = 0;
  for (; i < head; i++) dst[i] = src[i];
  for (; i + 16 <= n; i += 16) stream64(dst + i, src + i);
  for (; i < n; i++) dst[i] = src[i];
}

/* The update writes p1, m1, v1 once and nothing reads them before the next step: each chunk is computed into
 * small buffers and streamed out (no read of the destination lines first: ~3x faster here, memory-bound). The
 * same operations per element as a plain loop. */
#define FL_ADAMW_CHUNK 512
__attribute__((optimize("fp-contract=off"))) void fl_adamw(const float *p, const float *m, const float *v, const float *g, float *p1,
                                                            float *m1, float *v1, int n, float b1, float c1, float b2,
                                                            float c2, float sqrt_bc2, float eps, float decay, float step,
                                                            float gscale) {
  const float c[9] = {b1, c1, b2, c2, sqrt_bc2, eps, decay, step, gscale};
  const int nc = (n + FL_ADAMW_CHUNK - 1) / FL_ADAMW_CHUNK;
#pragma omp parallel if (n > 65536)
  {
    /* staggered (not 4 KiB apart: loads and stores 4 KiB apart falsely wait on each other) */
    float tbuf[3 * FL_ADAMW_CHUNK + 96] __attribute__((aligned(64)));
    float *tp = tbuf, *tm = tbuf + FL_ADAMW_CHUNK + 48, *tv = tbuf + 2 * FL_ADAMW_CHUNK + 96;
#pragma omp for schedule(static)
    for (int b = 0; b < nc; b++) {
      const i64 i0 = (i64)b * FL_ADAMW_CHUNK, i1 = i0 + FL_ADAMW_CHUNK < n ? i0 + FL_ADAMW_CHUNK : n;
      adamw_range(p, m, v, g, tp, tm, tv, i0, i1, i0, c);
      stream_copy(p1 + i0, tp, (int)(i1 - i0));
      stream_copy(m1 + i0, tm, (int)(i1 - i0));
      stream_copy(v1 + i0, tv, (int)(i1 - i0));
    }
#if defined(__AVX__)
    _mm_sfence();
#endif
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
