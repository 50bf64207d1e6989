#include "fl.h"

/* ---- Finedeep block (lib/backends/native/backend.ts FlFinedeep / FlFinedeepGrad) ---------------
 * The default Finedeep FFN (output-guided sigmoid gates, per-expert routers, gainless pre-norm on
 * inner sub-layers) as a few passes per sub-layer; the matrix products are CBLAS calls from backend.ts.
 *
 * u[k*E+e] = sum_j w2[(k*E+e)*D+j] * r[k*D+j]: u_k = W2_k r_k, the output-guided router folded into
 * the hidden layer (compute.md section 5). w2 [K*E, D], r [K, D]. */
static void fl_fd_u(const float *w2, const float *r, float *u, int K, int E, int D) {
  for (int k = 0; k < K; k++)
    for (int e = 0; e < E; e++) {
      const float *w = w2 + ((i64)k * E + e) * D, *rk = r + (i64)k * D;
      float s = 0.f;
      for (int j = 0; j < D; j++) s += w[j] * rk[j];
      u[(i64)k * E + e] = s;
    }
}

/* Backward of fl_fd_u: dw2 += du (x) r per expert block (dw2 holds the matmul's gradient already),
 * dr[k][j] = sum_e du[k*E+e] * w2[(k*E+e)*D+j] (in e order). */
static void fl_fd_u_bwd(const float *du, const float *w2, const float *r, float *dw2, float *dr, int K, int E, int D) {
  for (int k = 0; k < K; k++) {
    const float *rk = r + (i64)k * D;
    float *drk = dr + (i64)k * D;
    for (int j = 0; j < D; j++) drk[j] = 0.f;
    for (int e = 0; e < E; e++) {
      const i64 h = (i64)k * E + e;
      const float d = du[h];
      const float *w = w2 + h * D;
      float *dw = dw2 + h * D;
#pragma omp simd
      for (int j = 0; j < D; j++) {
        dw[j] += d * rk[j];
        drk[j] += d * w[j];
      }
    }
  }
}

/* sum_i a[i] * b[i] with 8 interleaved partial sums (lane i % 8, combined in a fixed tree): a single
 * running sum is a chain of dependent adds, ~4 cycles each, which dominated the expert gates. */
static inline float dot8(const float *a, const float *b, int n) {
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
  for (int l = 0; i < n; i++, l++) acc[l] += a[i] * b[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* SwiGLU and the expert gates in one pass: ab [N, 2H] = [a | b] (H = K*E), prod = silu(a) * b as
 * fl_swiglu_fwd, then g = sigmoid(prod_k . u_k) [N, K] (a row's K exponentials in one vector call)
 * and gated = prod * g per expert block. */
static void fl_swiglu_gate_fwd(const float *ab, const float *u, float *gated, float *g, int N, int K, int E) {
  const int H = K * E;
#pragma omp parallel if (!omp_in_parallel())
  {
    float *p = (float *)malloc(sizeof(float) * (size_t)(H > 0 ? H : 1));
    float *z = (float *)malloc(sizeof(float) * (size_t)(K > 0 ? K : 1));
#pragma omp for schedule(static)
    for (int n = 0; n < N; n++) {
      const float *a = ab + (i64)n * 2 * H, *b = a + H;
      float *o = gated + (i64)n * H, *gr = g + (i64)n * K;
      for (int j = 0; j < H; j++) p[j] = -a[j];
      exp_array(p, p, H);
      for (int j = 0; j < H; j++) p[j] = (a[j] * (1.f / (1.f + p[j]))) * b[j];
      for (int k = 0; k < K; k++) z[k] = -dot8(p + (i64)k * E, u + (i64)k * E, E);
      exp_array(z, z, K);
      for (int k = 0; k < K; k++) {
        const float gk = 1.f / (1.f + z[k]);
        const float *pk = p + (i64)k * E;
        float *ok = o + (i64)k * E;
        gr[k] = gk;
        for (int e = 0; e < E; e++) ok[e] = pk[e] * gk;
      }
    }
    free(p);
    free(z);
  }
}

/* Backward of fl_swiglu_gate_fwd (prod recomputed from ab): dprod = dgated * g + dz * u with
 * dz = g (1 - g) sum_e dgated * prod, then the SwiGLU backward of fl_swiglu_bwd into dab [N, 2H];
 * du [H] = sum over rows of dz * prod, per fixed 64-row chunk, then over chunks in order. */
static void fl_swiglu_gate_bwd(const float *dgated, const float *ab, const float *u, const float *g, float *dab,
                               float *du, int N, int K, int E) {
  const int H = K * E;
  const int nch = (N + FL_CHUNK - 1) / FL_CHUNK;
  float *part = (float *)calloc((size_t)(nch > 0 ? nch : 1) * (size_t)(H > 0 ? H : 1), sizeof(float));
#pragma omp parallel if (!omp_in_parallel())
  {
    float *sg = (float *)malloc(sizeof(float) * (size_t)(H > 0 ? H : 1));
    float *p = (float *)malloc(sizeof(float) * (size_t)(H > 0 ? H : 1));
    float *dp = (float *)malloc(sizeof(float) * (size_t)(H > 0 ? H : 1));
#pragma omp for schedule(static)
    for (int c = 0; c < nch; c++) {
      float *pc = part + (i64)c * H;
      const int n1 = (c + 1) * FL_CHUNK < N ? (c + 1) * FL_CHUNK : N;
      for (int n = c * FL_CHUNK; n < n1; n++) {
        const float *a = ab + (i64)n * 2 * H, *b = a + H, *dg = dgated + (i64)n * H;
        float *da = dab + (i64)n * 2 * H, *db = da + H;
        for (int j = 0; j < H; j++) sg[j] = -a[j];
        exp_array(sg, sg, H);
        for (int j = 0; j < H; j++) {
          sg[j] = 1.f / (1.f + sg[j]);
          p[j] = (a[j] * sg[j]) * b[j];
        }
        for (int k = 0; k < K; k++) {
          const i64 o = (i64)k * E;
          const float gk = g[(i64)n * K + k];
          const float dz = dot8(dg + o, p + o, E) * gk * (1.f - gk);
          for (int e = 0; e < E; e++) {
            dp[o + e] = dg[o + e] * gk + dz * u[o + e];
            pc[o + e] += dz * p[o + e];
          }
        }
        for (int j = 0; j < H; j++) {
          const float sl = a[j] * sg[j];
          db[j] = dp[j] * sl;
          da[j] = dp[j] * b[j] * (sg[j] + sl * (1.f - sg[j]));
        }
      }
    }
    free(sg);
    free(p);
    free(dp);
  }
  for (int h = 0; h < H; h++) du[h] = 0.f;
  for (int c = 0; c < nch; c++)
    for (int h = 0; h < H; h++) du[h] += part[(i64)c * H + h];
  free(part);
}

/* Residual step between sub-layers, per row of [N, D]: stream = a + y; out += y (when out is not
 * NULL); xm = stream * rstd, rstd = 1 / sqrt(mean(stream^2) + eps) (fl_rmsnorm_fwd without gain).
 * stream may alias a (in place). */
static void fl_fd_resid_fwd(const float *a, const float *y, float *stream, float *out, float *xm, float *rstd, int N,
                            int D, float eps) {
#pragma omp parallel for if (!omp_in_parallel()) schedule(static)
  for (int i = 0; i < N; i++) {
    const i64 o = (i64)i * D;
    float *s = stream + o;
    const float *ar = a + o, *yr = y + o;
#pragma omp simd
    for (int j = 0; j < D; j++) s[j] = ar[j] + yr[j];
    if (out) {
      float *orow = out + o;
#pragma omp simd
      for (int j = 0; j < D; j++) orow[j] += yr[j];
    }
    float ss = 0.f;
#pragma omp simd reduction(+ : ss)
    for (int j = 0; j < D; j++) ss += s[j] * s[j];
    const float r = 1.f / sqrtf(ss / (float)D + eps);
    rstd[i] = r;
    float *x = xm + o;
#pragma omp simd
    for (int j = 0; j < D; j++) x[j] = s[j] * r;
  }
}

/* Backward of the residual step: gm = rstd * (dxm - xm * mean(dxm * xm)) (the gainless RMSNorm
 * gradient; xm is the normed value x * rstd); G = first ? gm : G + gm (the gradient of the stream,
 * summed over the later sub-layers); dy = dout + G (the gradient of the previous sub-layer's output). */
static void fl_fd_resid_bwd(const float *dxm, const float *xm, const float *rstd, const float *dout, float *G,
                            float *dy, int N, int D, int first) {
#pragma omp parallel for if (!omp_in_parallel()) schedule(static)
  for (int i = 0; i < N; i++) {
    const i64 o = (i64)i * D;
    const float *d = dxm + o, *x = xm + o, *dor = dout + o;
    float *gr = G + o, *dyr = dy + o;
    const float r = rstd[i];
    float dot = 0.f;
#pragma omp simd reduction(+ : dot)
    for (int j = 0; j < D; j++) dot += d[j] * x[j];
    const float mdot = dot / (float)D;
    if (first) {
#pragma omp simd
      for (int j = 0; j < D; j++) gr[j] = r * (d[j] - x[j] * mdot);
    } else {
#pragma omp simd
      for (int j = 0; j < D; j++) gr[j] += r * (d[j] - x[j] * mdot);
    }
#pragma omp simd
    for (int j = 0; j < D; j++) dyr[j] = dor[j] + gr[j];
  }
}

/* The system CBLAS sgemm (cblas.h signature), found in the library the TypeScript side loaded. */
typedef void (*fl_sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *,
                            int);
static fl_sgemm_fn fl_sgemm_ptr = NULL;
int fl_sgemm_ready(void) { return fl_sgemm_ptr != NULL; }

/* Finds cblas_sgemm in the already loaded library `path` (blas.ts opened it first, so this gets the
 * same instance with its settings); 1 on success, 0 when the library or the symbol is missing. */
int fl_set_sgemm(const char *path) {
#ifdef _WIN32
  HMODULE lib = GetModuleHandleA(path);
  fl_sgemm_ptr = lib ? (fl_sgemm_fn)(void (*)(void))GetProcAddress(lib, "cblas_sgemm") : NULL;
#else
  void *lib = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  fl_sgemm_ptr = lib ? (fl_sgemm_fn)dlsym(lib, "cblas_sgemm") : NULL;
#endif
  return fl_sgemm_ptr != NULL;
}

/* c [m, n] = a [m, k] x op(b) + beta c, row-major (tb: b is [n, k]); ta: a is [k, m]. Inside a parallel
 * region OpenBLAS (OpenMP build) runs single-threaded (it checks omp_in_parallel). */
static void gemm(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta,
                 float *c, int ldc) {
  fl_sgemm_ptr(101, ta ? 112 : 111, tb ? 112 : 111, m, n, k, 1.f, a, lda, b, ldb, beta, c, ldc);
}

/* count independent sgemm calls (they must write disjoint parts of C), shared among the threads, each call
 * single-threaded: many small products (one per expert) in one parallel region instead of one threaded
 * sgemm after another. Call j: ints[14j..] = ta, tb, m, n, k, lda, ldb, ldc, then (array, offset in floats)
 * for a, b and c, arrays indexing `arrays` (addresses); beta 0. OpenBLAS splits C's rows/columns over its
 * threads, never k, so each call gives the bits it gives alone. Returns 0, or -1 when fl_set_sgemm has not
 * succeeded (-2: out of memory). */
void fl_gemm_rec(const int32_t *q, const uint64_t *arrays) {
  const float *a = (const float *)(uintptr_t)arrays[q[8]] + q[9], *b = (const float *)(uintptr_t)arrays[q[10]] + q[11];
  float *c = (float *)(uintptr_t)arrays[q[12]] + q[13];
  gemm(q[0], q[1], q[2], q[3], q[4], a, q[5], b, q[6], 0.f, c, q[7]);
}

int fl_sgemm_batch(const int32_t *ints, const uint64_t *arrays, int count) {
  if (!fl_sgemm_ptr) return -1;
  /* Largest calls first (m·n·k, ties in call order): the dynamic schedule then ends on small calls, so the
   * threads finish together (the order changes no call's bits). */
  int small[256], *ord = count <= 256 ? small : (int *)malloc(sizeof(int) * (size_t)count);
  if (!ord) return -2;
  for (int j = 0; j < count; j++) {
    const int32_t *q = ints + 14 * j;
    const i64 w = (i64)q[2] * q[3] * q[4];
    int i = j;
    for (; i > 0; i--) {
      const int32_t *p = ints + 14 * ord[i - 1];
      if ((i64)p[2] * p[3] * p[4] >= w) break;
      ord[i] = ord[i - 1];
    }
    ord[i] = j;
  }
#pragma omp parallel for schedule(dynamic, 1)
  for (int o = 0; o < count; o++) fl_gemm_rec(ints + 14 * ord[o], arrays);
  if (ord != small) free(ord);
  return 0;
}

/* One sub-layer of the Finedeep block, as the TypeScript side lays it out (M of them in an array). */
typedef struct {
  const float *w13, *w2, *r; /* weights [D, 2H], [H, D], routers [K, D] */
  float *u;                  /* [H] = W2_k r_k, written by the forward */
  float *ab, *gated, *g;     /* forward results the backward reads: [N, 2H], [N, H], [N, K] */
  float *xm, *rstd;          /* the sub-layer's input [N, D] (m = 0: the block's x) and its rstd [N] (m = 0: unused) */
  float *dw13, *dw2, *dr;    /* backward: weight gradients */
  float *du, *dup;           /* backward: du [H] and its per-row-block parts [nblocks, H] */
  float *dab, *dy;           /* backward scratch: [N, 2H], and dy_m [N, D] (m < M-1) */
} fl_fd_sub;

/* The default Finedeep FFN block forward (lib/backends/native/backend.ts FlFinedeep), M sub-layers
 * with K experts of E hidden units each (H = K E): u_m = W2_k r_k, then per row block of B rows and
 * per sub-layer: the residual step (m > 0: stream = h + y_0, then stream += y_{m-1}; gainless RMSNorm
 * into xm), ab = xm W13, SwiGLU + gates into gated, y_m = gated W2, ysum = ((y_0 + y_1) + ...) + y_{M-1}.
 * The row blocks are the parallel units (one parallel region per call: each thread takes whole
 * blocks through all sub-layers, its sgemm calls single-threaded), and every block computes the same
 * calls whatever the thread count, so the bits do not depend on it. stream, y: [N, D] scratch (M > 1,
 * M > 2). Returns 0, or -1 when fl_set_sgemm has not succeeded. */
int fl_fd_fwd(fl_fd_sub *S, const float *h, float *ysum, float *stream, float *y, int N, int D, int K, int E, int M,
              int B, float eps) {
  if (!fl_sgemm_ptr) return -1;
  const int H = K * E, nb = (N + B - 1) / B;
  for (int m = 0; m < M; m++) fl_fd_u(S[m].w2, S[m].r, S[m].u, K, E, D);
#pragma omp parallel for schedule(static)
  for (int b = 0; b < nb; b++) {
    const i64 r0 = (i64)b * B;
    const int n = N - r0 < B ? (int)(N - r0) : B;
    float *sum = ysum + r0 * D;
    for (int m = 0; m < M; m++) {
      const fl_fd_sub *s = S + m;
      float *xm = s->xm + r0 * D;
      if (m > 0) {
        /* m = 1: stream = h + y_0 (y_0 is in ysum); later: stream += y_{m-1}, ysum += y_{m-1}. */
        const float *prev = m == 1 ? sum : y + r0 * D, *from = m == 1 ? h + r0 * D : stream + r0 * D;
        fl_fd_resid_fwd(from, prev, stream + r0 * D, m == 1 ? NULL : sum, xm, s->rstd + r0, n, D, eps);
      }
      float *ab = s->ab + r0 * 2 * H, *gated = s->gated + r0 * H;
      gemm(0, 0, n, 2 * H, D, xm, D, s->w13, 2 * H, 0.f, ab, 2 * H);
      fl_swiglu_gate_fwd(ab, s->u, gated, s->g + r0 * K, n, K, E);
      /* y_0 -> ysum; y_m -> y for the next residual step, except the last, which sgemm adds to ysum (beta 1). */
      const int last = m > 0 && m == M - 1;
      gemm(0, 0, n, D, H, gated, H, s->w2, D, last ? 1.f : 0.f, m == 0 || last ? sum : y + r0 * D, D);
    }
  }
  return 0;
}

/* Backward of fl_fd_fwd (FlFinedeepGrad) in one parallel region, two phases. Per row block (the
 * forward's blocks), sub-layers last to first: dgated = dy_m W2ᵀ, the SwiGLU + gate backward into
 * dab (and the block's part of du), dxm = dab W13ᵀ, and for m > 0 the residual step's backward
 * (G = dh, the stream's gradient summed over the later sub-layers; dy_{m-1} = dout + G). Then the
 * 2M weight-gradient products (dW13_m = xmᵀ dab, dW2_m = gatedᵀ dy_m), each one task: its sum over
 * rows block by block in order (sgemm beta 1), then du = parts summed in block order and the router
 * gradient (fl_fd_u_bwd). With one thread the products run inside the first phase instead, each right
 * after its block's step (same calls, same order; the block's arrays are then still in cache: the
 * second phase re-reading them cost ~2% of the step). Same calls in the same order for any thread
 * count: the same bits.
 * dgated [N, H], dxm [N, D] (M > 1): scratch. Returns 0, or -1 without fl_set_sgemm. */
int fl_fd_bwd(fl_fd_sub *S, const float *dout, float *dx, float *dh, float *dgated, float *dxm, int N, int D, int K,
              int E, int M, int B) {
  if (!fl_sgemm_ptr) return -1;
  const int H = K * E, nb = (N + B - 1) / B;
#pragma omp parallel
  {
    /* One thread: the weight-gradient products block by block as the blocks go (the same calls in the
     * same order as the tasks below, while the block's arrays are still in cache). */
#ifdef _OPENMP
    const int inl = omp_get_num_threads() == 1;
#else
    const int inl = 1;
#endif
#pragma omp for schedule(static)
    for (int b = 0; b < nb; b++) {
      const i64 r0 = (i64)b * B;
      const int n = N - r0 < B ? (int)(N - r0) : B;
      const float beta = b > 0 ? 1.f : 0.f;
      float *dg = dgated + r0 * H;
      for (int m = M - 1; m >= 0; m--) {
        const fl_fd_sub *s = S + m;
        const float *dym = (m == M - 1 ? dout : s->dy) + r0 * D;
        float *dab = s->dab + r0 * 2 * H, *dxo = (m == 0 ? dx : dxm) + r0 * D;
        if (inl) gemm(1, 0, H, D, n, s->gated + r0 * H, H, dym, D, beta, s->dw2, D);
        gemm(0, 1, n, H, D, dym, D, s->w2, D, 0.f, dg, H);
        fl_swiglu_gate_bwd(dg, s->ab + r0 * 2 * H, s->u, s->g + r0 * K, dab, s->dup + (i64)b * H, n, K, E);
        if (inl) gemm(1, 0, D, 2 * H, n, s->xm + r0 * D, D, dab, 2 * H, beta, s->dw13, 2 * H);
        gemm(0, 1, n, D, 2 * H, dab, 2 * H, s->w13, 2 * H, 0.f, dxo, D);
        if (m > 0)
          fl_fd_resid_bwd(dxo, s->xm + r0 * D, s->rstd + r0, dout + r0 * D, dh + r0 * D, S[m - 1].dy + r0 * D, n, D,
                          m == M - 1);
      }
    }
    /* Tasks 0..M-1: dW13_m (the larger products first), M..2M-1: dW2_m, du_m and dr_m. */
#pragma omp for schedule(dynamic, 1)
    for (int t = 0; t < 2 * M; t++) {
      const fl_fd_sub *s = S + (t % M);
      const float *dy = t % M == M - 1 ? dout : s->dy;
      for (int b = 0; b < nb && !inl; b++) {
        const i64 r0 = (i64)b * B;
        const int n = N - r0 < B ? (int)(N - r0) : B;
        const float beta = b > 0 ? 1.f : 0.f;
        if (t < M)
          gemm(1, 0, D, 2 * H, n, s->xm + r0 * D, D, s->dab + r0 * 2 * H, 2 * H, beta, s->dw13, 2 * H);
        else
          gemm(1, 0, H, D, n, s->gated + r0 * H, H, dy + r0 * D, D, beta, s->dw2, D);
      }
      if (t >= M) {
        for (int j = 0; j < H; j++) s->du[j] = s->dup[j];
        for (int b = 1; b < nb; b++)
          for (int j = 0; j < H; j++) s->du[j] = s->du[j] + s->dup[(i64)b * H + j];
        fl_fd_u_bwd(s->du, s->w2, s->r, s->dw2, s->dr, K, E, D);
      }
    }
  }
  return 0;
}
