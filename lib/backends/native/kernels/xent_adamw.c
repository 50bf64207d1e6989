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
 * sum is one dependent chain of double additions (~4 cycles each), so one chain at a time left the core's
 * adders mostly idle: the arrays, longest first, go in bundles of SUMSQ_CHAINS whose chains advance side by
 * side in one loop (each still adds its own elements in index order: the same bits), bundles shared among
 * the threads. */
#define SUMSQ_CHAINS 4

/* Chains idx[0..g) of a bundle (g <= SUMSQ_CHAINS), side by side up to the shortest, then each alone. */
__attribute__((optimize("fp-contract=off"))) static void sumsq_bundle(const uint64_t *ptrs, const int32_t *lens,
                                                                       float *out, const int *idx, int g) {
  const float *x[SUMSQ_CHAINS];
  double acc[SUMSQ_CHAINS] = {0.0};
  int n[SUMSQ_CHAINS], common = INT32_MAX;
  for (int c = 0; c < g; c++) {
    x[c] = (const float *)(uintptr_t)ptrs[idx[c]];
    n[c] = lens[idx[c]];
    if (n[c] < common) common = n[c];
  }
  if (g == SUMSQ_CHAINS) {
    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
    const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
    for (int i = 0; i < common; i++) {
      const float s0 = x0[i] * x0[i], s1 = x1[i] * x1[i], s2 = x2[i] * x2[i], s3 = x3[i] * x3[i];
      a0 += (double)s0;
      a1 += (double)s1;
      a2 += (double)s2;
      a3 += (double)s3;
    }
    acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
  } else {
    common = 0;
  }
  for (int c = 0; c < g; c++) {
    double a = acc[c];
    for (int i = common; i < n[c]; i++) {
      const float sq = x[c][i] * x[c][i];
      a += (double)sq;
    }
    out[idx[c]] = (float)a;
  }
}

void fl_sumsq_many(const uint64_t *ptrs, const int32_t *lens, float *out, int count) {
  if (count <= 0) return;
  int *idx = malloc(sizeof(int) * (size_t)count);
  if (!idx) { /* no memory for the order: one chain at a time */
    for (int j = 0; j < count; j++) sumsq_bundle(ptrs, lens, out, &j, 1);
    return;
  }
  /* longest first (insertion sort, stable: ties keep their order) */
  for (int j = 0; j < count; j++) {
    int p = j;
    for (; p > 0 && lens[idx[p - 1]] < lens[j]; p--) idx[p] = idx[p - 1];
    idx[p] = j;
  }
  const int bundles = (count + SUMSQ_CHAINS - 1) / SUMSQ_CHAINS;
#pragma omp parallel for schedule(dynamic, 1)
  for (int b = 0; b < bundles; b++) {
    const int j0 = b * SUMSQ_CHAINS, g = count - j0 < SUMSQ_CHAINS ? count - j0 : SUMSQ_CHAINS;
    sumsq_bundle(ptrs, lens, out, idx + j0, g);
  }
  free(idx);
}
