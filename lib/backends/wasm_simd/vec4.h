/*
 * The 4-float (128-bit wasm SIMD) vector helpers of kernels.c: loads and stores through memcpy
 * (any alignment), splat, lane select, horizontal sum, Cephes exp, sigmoid and a 4-lane dot product.
 * Header-only (static inline), included once by kernels.c: one translation unit, one module.
 */
#ifndef FL_WASM_VEC4_H
#define FL_WASM_VEC4_H

#include <stdint.h>
#include <wasm_simd128.h>

#include "../native/kernels/cephes_exp.h"

typedef float v4 __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));

static inline v4 vload(const float *p) {
  v4 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
static inline void vstore(float *p, v4 v) { __builtin_memcpy(p, &v, sizeof v); }
static inline v4 vsplat(float x) { return (v4){x, x, x, x}; }
static inline v4 vsel(v4i m, v4 a, v4 b) { return (v4)(((v4i)a & m) | ((v4i)b & ~m)); }
static inline float hsum(v4 v) { return (v[0] + v[1]) + (v[2] + v[3]); }

/* exp(x) per lane: Cephes expf (range reduction by ln 2, degree-6 polynomial, 2^n through the
 * exponent bits; measured max relative error 8e-8), saturating above 88.7, 0 below -87.3. n is
 * rounded to nearest by adding 1.5 * 2^23 (the float's low bits are then n): in wasm this is ~25%
 * faster than native/kernels/fl.h's truncate-and-correct floor, whose conversions V8 expands. */
static inline v4 vexp(v4 x0) {
  const v4 lo = vsplat(-87.3f), magic = vsplat(12582912.f);
  const v4i under = x0 < lo;
  v4 x = (v4)wasm_f32x4_pmax((v128_t)wasm_f32x4_pmin((v128_t)x0, (v128_t)vsplat(88.7f)), (v128_t)lo);
  const v4 t = x * vsplat(1.44269504088896341f) + magic, fn = t - magic;
  const v4i n = (v4i)t - (v4i)magic;
  FL_EXP_POLY(v4, y, x, fn);
  return vsel(under, vsplat(0.f), y * (v4)((n + 127) << 23));
}
static inline v4 vsigmoid(v4 x) { return vsplat(1.f) / (vsplat(1.f) + vexp(-x)); }
static inline float sigmoid1(float x) { return vsigmoid(vsplat(x))[0]; }

/* sum_i a[i] * b[i]: 4 lanes (lane i % 4) summed in a fixed tree, then the tail in order. */
static inline float dot(const float *a, const float *b, int n) {
  v4 acc = vsplat(0.f);
  int i = 0;
  for (; i + 4 <= n; i += 4) acc += vload(a + i) * vload(b + i);
  float s = hsum(acc);
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

#endif
