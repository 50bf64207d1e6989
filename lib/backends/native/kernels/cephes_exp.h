/*
 * The polynomial of Cephes expf, shared by the native kernels (fl.h: 16-float vectors, GCC) and the wasm
 * SIMD kernels (../../wasm_simd/vec4.h: 4-float vectors, clang). Each keeps its own range reduction
 * (n = x / ln 2 rounded: floor there, nearest here) and its own 2^n scaling through the exponent bits.
 *
 * FL_EXP_POLY(V, y, x, fn): with fn = n as floats, reduces x by n ln 2 (ln 2 in two parts, so the
 * product is exact) and declares `V y` = exp(x) for the reduced x by the degree-6 polynomial. Needs a
 * `vsplat(float)` that returns a V.
 */
#ifndef FL_CEPHES_EXP_H
#define FL_CEPHES_EXP_H

#define FL_EXP_POLY(V, y, x, fn)                                                                                       \
  x = x - fn * vsplat(0.693359375f) - fn * vsplat(-2.12194440e-4f);                                                    \
  V y = vsplat(1.9875691500e-4f);                                                                                      \
  y = y * x + vsplat(1.3981999507e-3f);                                                                                \
  y = y * x + vsplat(8.3334519073e-3f);                                                                                \
  y = y * x + vsplat(4.1665795894e-2f);                                                                                \
  y = y * x + vsplat(1.6666665459e-1f);                                                                                \
  y = y * x + vsplat(5.0000001201e-1f);                                                                                \
  y = y * (x * x) + x + vsplat(1.f)

#endif
