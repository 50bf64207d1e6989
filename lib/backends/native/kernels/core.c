/* ABI, CPU and thread queries, and the FMA peak microbenchmark (see fl.h). */
#include "fl.h"

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
