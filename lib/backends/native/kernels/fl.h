/*
 * finelab native kernels: the fused float32 kernels of the "native" tfjs backend
 * (lib/backends/native/). Matrix products go to the system CBLAS from TypeScript; the C files of
 * this folder have what dominates after that: RMSNorm (norm.c), causal attention with RoPE
 * (attention.c), SwiGLU and Finedeep's expert gates (swiglu.c), the whole Finedeep block
 * (finedeep.c, which calls the same CBLAS sgemm itself through fl_set_sgemm so that one parallel
 * region covers all its steps), the sparse mixture op's passes as one parallel region each (moe.c, moe_prog.h), cross-entropy and AdamW (xent_adamw.c), a few element-wise ops
 * (elementwise.c), and the ABI/CPU/thread queries with an FMA peak microbenchmark (core.c). This
 * header holds what they share: includes, constants and the 16-float vector helpers.
 *
 * Build: `deno task build:native` (lib/backends/native/build.ts compiles every .c file here into
 * one shared library with the system cc and -O3 -march=native -fopenmp -shared -fPIC). Everything
 * is row-major float32.
 *
 * Determinism: every parallel loop splits work into units fixed by the shapes (rows, or
 * (batch, head) pairs, or fixed 64-row chunks for reductions over rows) and every unit is computed
 * in a fixed order, so results do not depend on the thread count or the schedule.
 */
#ifndef FL_KERNELS_H
#define FL_KERNELS_H

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

#include "cephes_exp.h"

#define FL_ABI_VERSION 10
/* Rows per chunk of the cross-row reductions (norm gain gradients): a fixed split keeps sums thread-count independent. */
#define FL_CHUNK 64

typedef int64_t i64;

/* One sgemm call of fl_sgemm_batch's table (finedeep.c): q[0..7] = ta, tb, m, n, k, lda, ldb, ldc, then (array,
 * offset in floats) for a, b and c, arrays indexing `arrays` (addresses); beta 0. Needs fl_set_sgemm. */
void fl_gemm_rec(const int32_t *q, const uint64_t *arrays);
int fl_sgemm_ready(void);

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
  FL_EXP_POLY(v16, y, x, fn);
  v16i e = (n + 127) << 23;
  return vsel(under, vsplat(0.f), y * (v16)e);
}

/* ---- the Sigmoid kernel's sigmoid, 8 lanes at a time, bit for bit -------------------------------------------
 * tfjs's Sigmoid (and every op here that must give its bits) computes (float)(1 / (1 + exp(-(double)x))) with the
 * C library's scalar exp: 4.1 ns an element here (one thread). sigmoid_exact does it on 8 doubles at once (2.2 ns)
 * with its own exp, then keeps a lane's result only where it provably equals the scalar formula's: both exps are
 * within a few ulps of exp (ours: Taylor to degree 13 after reduction by ln 2, 4 ulps at most on 4M values, a test
 * asserts <= 16; the C library's < 1 ulp), so the two doubles
 * 1/(1 + e) differ by at most ~8 ulps and round to the same float unless the double lies within that of a
 * midpoint between two floats. Lanes within 4096 ulps of a midpoint (about 1 in 65000), with |x| > 80 or NaN
 * take the scalar formula itself (Ziv's rounding test). */
typedef float v8f __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));
typedef int64_t v8l __attribute__((vector_size(64)));

/* exp(x) for 8 doubles, |x| <= 80: x = k ln2 + r (ln 2 in two parts, k·ln2_hi exact), |r| <= ln2/2, exp(r) by its
 * Taylor polynomial to degree 13 (remainder < 1e-17 relative), times 2^k through the exponent bits. */
static inline v8d vexp_d(v8d x) {
  const v8d shifter = (v8d){0} + 0x1.8p52; /* adding and subtracting it rounds to an integer */
  const v8d kf = (x * 1.4426950408889634 + shifter) - shifter;
  const v8d r = (x - kf * 6.93147180369123816490e-01) - kf * 1.90821492927058770002e-10;
  v8d p = (v8d){0} + 1.0 / 6227020800.0;
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const v8l k = __builtin_convertvector(kf, v8l);
  return p * (v8d)((k + 1023) << 52);
}

/* The scalar formula itself, in double (sigmoid_exact rounds it to float). */
static inline double sigmoid_scalar_d(float x) { return 1.0 / (1.0 + exp(-(double)x)); }

/* out[i] = (float)(1 / (1 + exp(-(double)x[i]))) for i in [i0, i1), the bits of the scalar formula. */
static inline void sigmoid_exact(const float *x, float *out, i64 i0, i64 i1) {
  i64 i = i0;
  for (; i + 8 <= i1; i += 8) {
    v8f xf;
    memcpy(&xf, x + i, sizeof xf);
    const v8d nx = -__builtin_convertvector(xf, v8d);
    const v8d y = 1.0 / (1.0 + vexp_d(nx));
    const v8f yf = __builtin_convertvector(y, v8f);
    const v8l extra = (v8l)y & ((1LL << 29) - 1); /* the double's bits below float precision */
    const v8l bad = ((extra > (1LL << 28) - 4096) & (extra < (1LL << 28) + 4096)) | (v8l)(nx > 80.0) |
                    (v8l)(nx < -80.0) | (v8l)(nx != nx);
    memcpy(out + i, &yf, sizeof yf);
    for (int l = 0; l < 8; l++)
      if (bad[l]) out[i + l] = (float)sigmoid_scalar_d(x[i + l]);
  }
  for (; i < i1; i++) out[i] = (float)sigmoid_scalar_d(x[i]);
}

/* out[i] = exp(in[i]) for i < n (in and out may alias). */
__attribute__((unused, noinline)) static void exp_array(const float *in, float *out, int n) {
  int i = 0;
  for (; i + VL <= n; i += VL) vstore(out + i, vexp(vload(in + i)));
  if (i < n) {
    float t[VL] = {0};
    memcpy(t, in + i, sizeof(float) * (size_t)(n - i));
    vstore(t, vexp(vload(t)));
    memcpy(out + i, t, sizeof(float) * (size_t)(n - i));
  }
}

/* e[j] = exp(x[j] - max x) for j < n (n >= 1; e may alias x); returns max x. The softmax and the
 * cross-entropy's log-sum-exp start alike. */
static inline float exp_minus_max(const float *x, float *e, int n) {
  float m = x[0];
  for (int j = 1; j < n; j++) m = x[j] > m ? x[j] : m;
  for (int j = 0; j < n; j++) e[j] = x[j] - m;
  exp_array(e, e, n);
  return m;
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

#endif
