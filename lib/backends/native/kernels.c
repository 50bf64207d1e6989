/*
 * finelab native kernels: the fused float32 kernels of the "native" tfjs backend
 * (lib/backends/native/). Matrix products go to the system CBLAS from TypeScript; this file has
 * what dominates after that: RMSNorm, causal attention with RoPE, SwiGLU, Finedeep's expert gates
 * and sub-layer residual steps, cross-entropy, AdamW, a few element-wise ops, and an FMA peak
 * microbenchmark. The exception is the whole Finedeep block (fl_fd_fwd / fl_fd_bwd), which calls
 * the same CBLAS sgemm itself (fl_set_sgemm) so that one parallel region covers all its steps.
 *
 * Build: `deno task build:native` (lib/backends/native/build.ts runs the system cc with
 * -O3 -march=native -fopenmp -shared -fPIC). Everything is row-major float32.
 *
 * Determinism: every parallel loop splits work into units fixed by the shapes (rows, or
 * (batch, head) pairs, or fixed 64-row chunks for reductions over rows) and every unit is computed
 * in a fixed order, so results do not depend on the thread count or the schedule.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef _WIN32
#include <windows.h>
#else
#include <dlfcn.h>
#endif

#define FL_ABI_VERSION 9
/* Rows per chunk of the cross-row reductions (norm gain gradients): a fixed split keeps sums thread-count independent. */
#define FL_CHUNK 64

typedef int64_t i64;

int fl_abi_version(void) { return FL_ABI_VERSION; }

/* CPU features (x86 CPUID through the compiler builtin; 0 elsewhere): bit 0 avx2, 1 fma, 2 avx512f,
 * 3 avx512bw, 4 avx512vl, 5 avx512dq, 6 avx512cd. Deno refuses /proc/cpuinfo without --allow-all,
 * so the BLAS kernel choice (blas.ts) asks here. */
int fl_cpu_features(void) {
  int f = 0;
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) f |= 1;
  if (__builtin_cpu_supports("fma")) f |= 2;
  if (__builtin_cpu_supports("avx512f")) f |= 4;
  if (__builtin_cpu_supports("avx512bw")) f |= 8;
  if (__builtin_cpu_supports("avx512vl")) f |= 16;
  if (__builtin_cpu_supports("avx512dq")) f |= 32;
  if (__builtin_cpu_supports("avx512cd")) f |= 64;
#endif
  return f;
}

/* 1 when built with OpenMP (threads available), else 0. */
int fl_has_openmp(void) {
#ifdef _OPENMP
  return 1;
#else
  return 0;
#endif
}

void fl_set_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n < 1 ? 1 : n);
#else
  (void)n;
#endif
}

int fl_get_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

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

/* ---- vector helpers ---------------------------------------------------------------------------
 * GCC/Clang vector extensions: 16 floats (one AVX-512 register, two AVX2, four NEON). Loads and
 * stores go through memcpy (any alignment). */
typedef float v16 __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
#define VL 16

static inline v16 vload(const float *p) {
  v16 v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline void vstore(float *p, v16 v) { memcpy(p, &v, sizeof v); }
static inline v16 vsplat(float x) { return (v16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }
/* Lane-wise select: m ? a : b (m from a vector comparison: all ones or zeros per lane). */
static inline v16 vsel(v16i m, v16 a, v16 b) { return (v16)(((v16i)a & m) | ((v16i)b & ~m)); }

/* exp(x) for 16 lanes (Cephes expf: range reduction by ln 2, degree-6 polynomial, 2^n by
 * exponent bits; ~2 ulp). Above 88.7 it saturates at exp(88.7); below -87.3 (where exp is
 * subnormal or 0) it returns 0, as exp(-1e9) of a masked logit must be: subnormal values would
 * also slow every later float operation ~100x. */
static inline v16 vexp(v16 x0) {
  const v16 hi = vsplat(88.7f), lo = vsplat(-87.3f);
  const v16i under = x0 < lo;
  v16 x = vsel(x0 > hi, hi, x0);
  x = vsel(under, lo, x);
  v16 fx = x * vsplat(1.44269504088896341f) + vsplat(0.5f);
  v16i n = __builtin_convertvector(fx, v16i); /* truncation */
  v16 fn = __builtin_convertvector(n, v16);
  v16i gt = fn > fx; /* -1 where truncation rounded up (negative fx): floor */
  n = n + gt;
  fn = __builtin_convertvector(n, v16);
  x = x - fn * vsplat(0.693359375f) - fn * vsplat(-2.12194440e-4f);
  v16 y = vsplat(1.9875691500e-4f);
  y = y * x + vsplat(1.3981999507e-3f);
  y = y * x + vsplat(8.3334519073e-3f);
  y = y * x + vsplat(4.1665795894e-2f);
  y = y * x + vsplat(1.6666665459e-1f);
  y = y * x + vsplat(5.0000001201e-1f);
  y = y * (x * x) + x + vsplat(1.f);
  v16i e = (n + 127) << 23;
  return vsel(under, vsplat(0.f), y * (v16)e);
}

/* out[i] = exp(in[i]) for i < n (in and out may alias). */
static void exp_array(const float *in, float *out, int n) {
  int i = 0;
  for (; i + VL <= n; i += VL) vstore(out + i, vexp(vload(in + i)));
  if (i < n) {
    float t[VL] = {0};
    memcpy(t, in + i, sizeof(float) * (size_t)(n - i));
    vstore(t, vexp(vload(t)));
    memcpy(out + i, t, sizeof(float) * (size_t)(n - i));
  }
}

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

/* Lane index vector 0..15. */
static inline v16i lanes(void) { return (v16i){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}; }

static inline float hsum(v16 v) {
  float s = 0.f;
  for (int l = 0; l < VL; l++) s += v[l];
  return s;
}

static inline float hmax(v16 v) {
  float m = v[0];
  for (int l = 1; l < VL; l++) m = v[l] > m ? v[l] : m;
  return m;
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

/* ---- SwiGLU ---------------------------------------------------------------------------------
 * ab [N, 2*Hf] = [a | b] -> h [N, Hf] = silu(a) * b, silu(a) = a * sigmoid(a). */
void fl_swiglu_fwd(const float *ab, float *out, int N, int Hf) {
#pragma omp parallel
  {
    float *e = (float *)malloc(sizeof(float) * (size_t)(Hf > 0 ? Hf : 1));
#pragma omp for schedule(static)
    for (int i = 0; i < N; i++) {
      const float *a = ab + (i64)i * 2 * Hf, *b = a + Hf;
      float *o = out + (i64)i * Hf;
      for (int j = 0; j < Hf; j++) e[j] = -a[j];
      exp_array(e, e, Hf);
      for (int j = 0; j < Hf; j++) o[j] = (a[j] * (1.f / (1.f + e[j]))) * b[j];
    }
    free(e);
  }
}

void fl_swiglu_bwd(const float *dh, const float *ab, float *dab, int N, int Hf) {
#pragma omp parallel
  {
    float *e = (float *)malloc(sizeof(float) * (size_t)(Hf > 0 ? Hf : 1));
#pragma omp for schedule(static)
    for (int i = 0; i < N; i++) {
      const float *a = ab + (i64)i * 2 * Hf, *b = a + Hf, *d = dh + (i64)i * Hf;
      float *da = dab + (i64)i * 2 * Hf, *db = da + Hf;
      for (int j = 0; j < Hf; j++) e[j] = -a[j];
      exp_array(e, e, Hf);
      for (int j = 0; j < Hf; j++) {
        const float sg = 1.f / (1.f + e[j]);
        const float sl = a[j] * sg;
        db[j] = d[j] * sl;
        da[j] = d[j] * b[j] * (sg + sl * (1.f - sg));
      }
    }
    free(e);
  }
}

/* ---- fine-grained expert gates (Finedeep, output-guided sigmoid) ----------------------------
 * prod [N, K*E] (expert k owns columns k*E..(k+1)*E), u [K*E]:
 * z[n][k] = sum_e prod[n][k*E+e] * u[k*E+e]; g = sigmoid(z) [N, K]; gated = prod * g (per block). */
void fl_expert_gate_fwd(const float *prod, const float *u, float *gated, float *g, int N, int K, int E) {
  const i64 H = (i64)K * E;
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; n++) {
    const float *p = prod + n * H;
    float *o = gated + n * H;
    for (int k = 0; k < K; k++) {
      const float *pk = p + (i64)k * E, *uk = u + (i64)k * E;
      float z = 0.f;
      for (int e = 0; e < E; e++) z += pk[e] * uk[e];
      const float gk = 1.f / (1.f + expf(-z));
      g[(i64)n * K + k] = gk;
      for (int e = 0; e < E; e++) o[(i64)k * E + e] = pk[e] * gk;
    }
  }
}

/* dprod = dgated * g + dz * u, du = sum over rows of dz * prod, dz = g (1 - g) sum_e dgated * prod;
 * du summed per fixed 64-row chunk, then over chunks in order. */
void fl_expert_gate_bwd(const float *dgated, const float *prod, const float *u, const float *g, float *dprod, float *du,
                        int N, int K, int E) {
  const i64 H = (i64)K * E;
  const int nch = (N + FL_CHUNK - 1) / FL_CHUNK;
  float *part = (float *)calloc((size_t)(nch > 0 ? nch : 1) * (size_t)H, sizeof(float));
#pragma omp parallel for schedule(static)
  for (int c = 0; c < nch; c++) {
    float *pc = part + (i64)c * H;
    const int n1 = (c + 1) * FL_CHUNK < N ? (c + 1) * FL_CHUNK : N;
    for (int n = c * FL_CHUNK; n < n1; n++) {
      const float *p = prod + n * H, *dg = dgated + n * H;
      float *dp = dprod + n * H;
      for (int k = 0; k < K; k++) {
        const i64 o = (i64)k * E;
        const float gk = g[(i64)n * K + k];
        float s = 0.f;
        for (int e = 0; e < E; e++) s += dg[o + e] * p[o + e];
        const float dz = s * gk * (1.f - gk);
        for (int e = 0; e < E; e++) {
          dp[o + e] = dg[o + e] * gk + dz * u[o + e];
          pc[o + e] += dz * p[o + e];
        }
      }
    }
  }
  for (i64 h = 0; h < H; h++) du[h] = 0.f;
  for (int c = 0; c < nch; c++)
    for (i64 h = 0; h < H; h++) du[h] += part[(i64)c * H + h];
  free(part);
}

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
      float m = l[0];
      for (int j = 1; j < V; j++) m = l[j] > m ? l[j] : m;
      for (int j = 0; j < V; j++) e[j] = l[j] - m;
      exp_array(e, e, V);
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
 * m1 = m*b1 + g*c1; v1 = v*b2 + (g*g)*c2; p1 = p*decay - (m1 / (sqrt(v1)/sqrt_bc2 + eps)) * step,
 * with c1 = 1-b1, c2 = 1-b2, decay = 1-lr*wd (1 without decay), step = lr/bc1 computed by the caller
 * in double and rounded to float, as tfjs does with scalar operands. No FMA contraction, so each
 * operation rounds like the separate tfjs element-wise kernels. */
__attribute__((optimize("fp-contract=off"))) void fl_adamw(const float *p, const float *m, const float *v,
                                                            const float *g, float *p1, float *m1, float *v1, int n,
                                                            float b1, float c1, float b2, float c2, float sqrt_bc2,
                                                            float eps, float decay, float step) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int i = 0; i < n; i++) {
    const float mm = m[i] * b1 + g[i] * c1;
    const float vv = v[i] * b2 + (g[i] * g[i]) * c2;
    m1[i] = mm;
    v1[i] = vv;
    const float denom = sqrtf(vv) / sqrt_bc2 + eps;
    p1[i] = p[i] * decay - (mm / denom) * step;
  }
}

/* ---- element-wise helpers -------------------------------------------------------------------- */

/* out = a + b (same length). */
void fl_add(const float *a, const float *b, float *out, int n) {
#pragma omp parallel for schedule(static) if (n > 262144)
  for (int i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* out = a * b (same length). */
void fl_mul(const float *a, const float *b, float *out, int n) {
#pragma omp parallel for schedule(static) if (n > 262144)
  for (int i = 0; i < n; i++) out[i] = a[i] * b[i];
}

/* out = a * s. */
void fl_scale(const float *a, float s, float *out, int n) {
#pragma omp parallel for schedule(static) if (n > 262144)
  for (int i = 0; i < n; i++) out[i] = a[i] * s;
}

/* out = a op b with numpy broadcasting, op: 0 add, 1 sub, 2 mul, 3 div. shape [rank] is the output
 * shape; sa/sb [rank] the element strides of a and b per output dim (0 on broadcast dims). Each
 * element is one float32 operation, so results equal tfjs-backend-cpu's bit for bit. */
void fl_binary(int op, const float *a, const float *b, float *out, int rank, const int32_t *shape, const int32_t *sa,
               const int32_t *sb) {
  i64 total = 1;
  for (int d = 0; d < rank; d++) total *= shape[d];
  if (total == 0) return;
  const int inner = rank ? shape[rank - 1] : 1;
  const i64 ia = rank ? sa[rank - 1] : 0, ib = rank ? sb[rank - 1] : 0;
  int idx[16] = {0};
  i64 offa = 0, offb = 0;
  for (i64 o = 0; o < total; o += inner) {
    const float *pa = a + offa, *pb = b + offb;
    float *po = out + o;
#define FL_LOOP(EXPR)                                                                                                  \
  if (ia == 1 && ib == 1) {                                                                                            \
    _Pragma("omp simd") for (int i = 0; i < inner; i++) { const float x = pa[i], y = pb[i]; po[i] = (EXPR); }          \
  } else if (ia == 1) {                                                                                                \
    const float y = pb[0];                                                                                             \
    _Pragma("omp simd") for (int i = 0; i < inner; i++) { const float x = pa[i]; po[i] = (EXPR); }                     \
  } else if (ib == 1) {                                                                                                \
    const float x = pa[0];                                                                                             \
    _Pragma("omp simd") for (int i = 0; i < inner; i++) { const float y = pb[i]; po[i] = (EXPR); }                     \
  } else {                                                                                                             \
    for (int i = 0; i < inner; i++) { const float x = pa[i * ia], y = pb[i * ib]; po[i] = (EXPR); }                    \
  }
    switch (op) {
    case 0: FL_LOOP(x + y) break;
    case 1: FL_LOOP(x - y) break;
    case 2: FL_LOOP(x * y) break;
    default: FL_LOOP(x / y) break;
    }
#undef FL_LOOP
    /* advance the odometer over the outer dims */
    for (int d = rank - 2; d >= 0; d--) {
      offa += sa[d];
      offb += sb[d];
      if (++idx[d] < shape[d]) break;
      offa -= (i64)sa[d] * shape[d];
      offb -= (i64)sb[d] * shape[d];
      idx[d] = 0;
    }
  }
}

/* out[o][i] = sum over r of x[o][r][i] (x viewed as [outer][R][inner]), accumulated in double in
 * increasing r and rounded once, as tfjs-backend-cpu's Sum; with div != 0 each term is x / div
 * rounded to float first (its Mean). */
void fl_reduce_sum(const float *x, float *out, int outer, int R, int inner, float div) {
  double *acc = (double *)malloc(sizeof(double) * (size_t)(inner > 0 ? inner : 1));
  for (int o = 0; o < outer; o++) {
    for (int i = 0; i < inner; i++) acc[i] = 0.0;
    const float *xo = x + (i64)o * R * inner;
    for (int r = 0; r < R; r++) {
      const float *xr = xo + (i64)r * inner;
      if (div != 0.f)
        for (int i = 0; i < inner; i++) acc[i] += (double)(xr[i] / div);
      else
        for (int i = 0; i < inner; i++) acc[i] += (double)xr[i];
    }
    for (int i = 0; i < inner; i++) out[(i64)o * inner + i] = (float)acc[i];
  }
  free(acc);
}

/* Softmax over the last axis of x [rows, n] (max subtracted, vectorised exp, float sum in a fixed order). */
void fl_softmax(const float *x, float *out, int rows, int n) {
#pragma omp parallel for schedule(static) if ((i64)rows * n > 262144)
  for (int r = 0; r < rows; r++) {
    const float *xr = x + (i64)r * n;
    float *o = out + (i64)r * n;
    float m = xr[0];
    for (int j = 1; j < n; j++) m = xr[j] > m ? xr[j] : m;
    for (int j = 0; j < n; j++) o[j] = xr[j] - m;
    exp_array(o, o, n);
    float sum = 0.f;
    for (int j = 0; j < n; j++) sum += o[j];
    for (int j = 0; j < n; j++) o[j] /= sum;
  }
}

/* out = f(x): 0 square, 1 neg, 2 sigmoid, 3 rsqrt, 4 sqrt; sigmoid and rsqrt in double then rounded,
 * as tfjs-backend-cpu computes them in JS numbers. */
void fl_unary(int op, const float *x, float *out, int n) {
  switch (op) {
  case 0:
#pragma omp simd
    for (int i = 0; i < n; i++) out[i] = x[i] * x[i];
    break;
  case 1:
#pragma omp simd
    for (int i = 0; i < n; i++) out[i] = -x[i];
    break;
  case 2:
    for (int i = 0; i < n; i++) out[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
    break;
  case 3:
    for (int i = 0; i < n; i++) out[i] = (float)(1.0 / sqrt((double)x[i]));
    break;
  default:
    for (int i = 0; i < n; i++) out[i] = (float)sqrt((double)x[i]);
    break;
  }
}

/* Sum of squares in fixed 4096-element blocks summed in order (float32, thread-count independent). */
float fl_sumsq(const float *a, int n) {
  const int bs = 4096, nb = (n + bs - 1) / bs;
  float *part = (float *)malloc(sizeof(float) * (size_t)(nb > 0 ? nb : 1));
#pragma omp parallel for schedule(static) if (n > 262144)
  for (int k = 0; k < nb; k++) {
    const int i1 = (k + 1) * bs < n ? (k + 1) * bs : n;
    float s = 0.f;
#pragma omp simd reduction(+ : s)
    for (int i = k * bs; i < i1; i++) s += a[i] * a[i];
    part[k] = s;
  }
  float s = 0.f;
  for (int k = 0; k < nb; k++) s += part[k];
  free(part);
  return s;
}

/* ---- peak: independent FMA chains ------------------------------------------------------------
 * Each thread runs 24 independent accumulators of 16 floats (GCC vector extension: AVX-512 /
 * AVX2+FMA / NEON per -march=native) for `iters` iterations. Returns FLOP/s over all threads
 * (2 FLOP per lane per FMA); `threads` <= 0 uses the current OpenMP thread count. */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double fl_peak_fma(int threads, i64 iters) {
  volatile float sink = 0.f;
  int nt = threads > 0 ? threads : fl_get_threads();
  double t0 = now_s();
#pragma omp parallel num_threads(nt)
  {
    v16 acc[24];
    v16 mul, add;
    for (int l = 0; l < 16; l++) {
      mul[l] = 0.999999f;
      add[l] = 1e-7f * (float)(l + 1);
    }
    for (int k = 0; k < 24; k++)
      for (int l = 0; l < 16; l++) acc[k][l] = (float)(k * 16 + l) * 1e-3f + sink;
    for (i64 it = 0; it < iters; it++) {
#pragma GCC unroll 24
      for (int k = 0; k < 24; k++) acc[k] = acc[k] * mul + add;
    }
    float s = 0.f;
    for (int k = 0; k < 24; k++)
      for (int l = 0; l < 16; l++) s += acc[k][l];
#pragma omp critical
    sink += s;
  }
  double dt = now_s() - t0;
  int used = nt;
#ifndef _OPENMP
  used = 1;
#endif
  return (double)used * (double)iters * 24.0 * 16.0 * 2.0 / dt;
}
