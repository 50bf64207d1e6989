/* ---- fl_moe_prog: a whole pass of the sparse mixture op in ONE parallel region (included by moe.c) -------------
 * With OMP_WAIT_POLICY=passive every parallel region wakes its sleeping threads (~60 us on the 2-vCPU VM, more
 * than many of the op's steps take), so a pass of ~5 short regions ran nearly single-threaded. Here the steps
 * are records run in order; the records between two barriers form a step whose units (one sgemm call, or a
 * block of rows, elements or columns) the threads claim from a counter, largest sgemm calls first; between steps
 * the threads meet at a spinning barrier. Every unit computes what it computes alone (the same functions as the
 * exported kernels, sgemm calls single-threaded and never split), so the bits do not depend on the threads.
 *
 * Record (24 int32): [0] kind, [1] 1 = barrier before it, [2..11] integers, [12..23] six operands as (array,
 * offset in elements) into `arrays` (addresses of float32 or int32 arrays). Kinds and their integers / operands:
 * 0 sgemm: ta, tb, m, n, k, lda, ldb, ldc / a, b, c (beta 0; fl_gemm_rec)      1 gather: R, w, off, d / x, rows, out
 * 2 SwiGLU forward: n / a, b, sig, h                                             3 SwiGLU backward: n / a, b, sig, dh, da, db
 * 4 weighted scatter: R, w, off, d / y, o, c, rows      5 weighting backward: R, w, off, d / dy, rows, c, o, dO, dc
 * 6 scatter of a sum: R, w, off, d / y, u, v, rows */
#ifndef _WIN32
#include <sched.h>
#endif

#define REC 24

static void *opnd(const int32_t *q, const uint64_t *arrays, int k) {
  return (char *)(uintptr_t)arrays[q[12 + 2 * k]] + 4 * (i64)q[13 + 2 * k];
}

static int prog_units(const int32_t *q) {
  const int *v = q + 2;
  switch (q[0]) {
  case 0: return 1;
  case 1: case 5: return (v[0] + ROWS - 1) / ROWS;
  case 2: case 3: return (v[0] + ELEMS - 1) / ELEMS;
  default: return NB(v[3]);
  }
}

static void prog_unit(const int32_t *q, const uint64_t *arrays, int u) {
  const int *v = q + 2;
  const int r0 = u * ROWS, r1 = r0 + ROWS < v[0] ? r0 + ROWS : v[0];
  const i64 e0 = (i64)u * ELEMS, e1 = e0 + ELEMS < v[0] ? e0 + ELEMS : v[0];
#define P(k) opnd(q, arrays, k)
  switch (q[0]) {
  case 0: {
    const int32_t g[14] = {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], q[12], q[13], q[14], q[15], q[16], q[17]};
    fl_gemm_rec(g, arrays);
    break;
  }
  case 1: gather_range(P(0), P(1), P(2), r0, r1, v[1], v[2], v[3]); break;
  case 2: swiglu_fwd_range(P(0), P(1), P(2), P(3), e0, e1); break;
  case 3: swiglu_bwd_range(P(0), P(1), P(2), P(3), P(4), P(5), e0, e1); break;
  case 4: scatter_weighted_block(P(0), P(1), P(2), P(3), v[0], v[1], v[2], v[3], u); break;
  case 5: weighted_bwd_range(P(0), P(1), P(2), P(3), P(4), P(5), r0, r1, v[1], v[2], v[3]); break;
  case 6: scatter_add2_block(P(0), P(1), P(2), P(3), v[0], v[1], v[2], v[3], u); break;
  }
#undef P
}

static void spin_pause(int *spins) {
  if (++*spins < 1000) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
  } else {
#ifdef _WIN32
    SwitchToThread();
#else
    sched_yield();
#endif
  }
}

static i64 gemm_cost(const int32_t *q) { return q[0] == 0 ? (i64)q[4] * q[5] * q[6] : -1; }

/* Runs the n records (see above). Returns 0, -1 without fl_set_sgemm, -2 out of memory. */
int fl_moe_prog(const int32_t *recs, const uint64_t *arrays, int n) {
  if (!fl_sgemm_ready()) return -1;
  int total = 0, steps = 0;
  for (int i = 0; i < n; i++) total += prog_units(recs + REC * i), steps += i == 0 || recs[REC * i + 1];
  int *unit = malloc(sizeof(int) * (2 * (size_t)total + 3 * (size_t)steps + 1)), *ops = malloc(sizeof(int) * (size_t)n + 1);
  if (!unit || !ops) return free(unit), free(ops), -2;
  int *rec = unit + total, *beg = rec + total, *claim = beg + steps + 1, *arrive = claim + steps;
  /* Per step: with several threads its sgemm records by cost (largest first, stable), then the other records
   * in order; one thread keeps the call order (the expert after expert order reuses each expert's rows in cache). */
#ifdef _OPENMP
  const int lpt = omp_get_max_threads() > 1;
#else
  const int lpt = 0;
#endif
  int s = -1, k = 0;
  for (int i = 0; i < n;) {
    int j = i + 1;
    while (j < n && !recs[REC * j + 1]) j++;
    beg[++s] = k;
    int m = 0;
    for (int t = i; t < j; t++) {
      const i64 c = gemm_cost(recs + REC * t);
      int p = m++;
      for (; lpt && p > 0 && c > gemm_cost(recs + REC * ops[p - 1]); p--) ops[p] = ops[p - 1];
      ops[p] = t;
    }
    for (int p = 0; p < m; p++)
      for (int u = 0; u < prog_units(recs + REC * ops[p]); u++) rec[k] = ops[p], unit[k++] = u;
    i = j;
  }
  beg[steps] = k;
  memset(claim, 0, sizeof(int) * 2 * (size_t)steps);
#pragma omp parallel
  {
#ifdef _OPENMP
    const int nt = omp_get_num_threads();
#else
    const int nt = 1;
#endif
    for (int t = 0; t < steps; t++) {
      const int nu = beg[t + 1] - beg[t];
      for (int u; (u = __atomic_fetch_add(&claim[t], 1, __ATOMIC_RELAXED)) < nu;)
        prog_unit(recs + REC * rec[beg[t] + u], arrays, unit[beg[t] + u]);
      if (t + 1 < steps && nt > 1) {
        __atomic_fetch_add(&arrive[t], 1, __ATOMIC_ACQ_REL);
        for (int spins = 0; __atomic_load_n(&arrive[t], __ATOMIC_ACQUIRE) < nt;) spin_pause(&spins);
      }
    }
  }
  free(unit);
  free(ops);
  return 0;
}
