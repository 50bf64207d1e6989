#include "fl.h"

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
  if (inner == 1) {
    /* Sums over whole rows: the same sequential double additions with the accumulator in a register (through
     * memory, each addition also waited on a store and a load: ~3x slower on the gradient-norm sums). */
    for (int o = 0; o < outer; o++) {
      const float *xo = x + (i64)o * R;
      double acc = 0.0;
      if (div != 0.f)
        for (int r = 0; r < R; r++) acc += (double)(xo[r] / div);
      else
        for (int r = 0; r < R; r++) acc += (double)xo[r];
      out[o] = (float)acc;
    }
    return;
  }
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
    exp_minus_max(xr, o, n);
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
  case 2: {
    const int nb = (n + 4095) / 4096;
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int b = 0; b < nb; b++) sigmoid_exact(x, out, (i64)b * 4096, (i64)(b + 1) * 4096 < n ? (i64)(b + 1) * 4096 : n);
    break;
  }
  case 3:
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int i = 0; i < n; i++) out[i] = (float)(1.0 / sqrt((double)x[i]));
    break;
  default:
#pragma omp parallel for schedule(static) if (n > 16384)
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

/* For sigmoid_exact's test (fl.h): the scalar formula it must reproduce, and the largest distance in double ulps
 * between its 8-lane double 1/(1 + exp(-x)) and the scalar one over x[0..n) with |x| <= 80 (n a multiple of 8),
 * which must stay far below the 4096 its rounding test allows. */
void fl_sigmoid_scalar(const float *x, float *out, int n) {
  for (int i = 0; i < n; i++) out[i] = (float)sigmoid_scalar_d(x[i]);
}

double fl_sigmoid_max_ulps(const float *x, int n) {
  i64 worst = 0;
  for (int i = 0; i + 8 <= n; i += 8) {
    v8f xf;
    memcpy(&xf, x + i, sizeof xf);
    const v8d y = 1.0 / (1.0 + vexp_d(-__builtin_convertvector(xf, v8d)));
    for (int l = 0; l < 8; l++) {
      if (!(fabs((double)x[i + l]) <= 80.0)) continue;
      const double ys = sigmoid_scalar_d(x[i + l]), yv = y[l];
      i64 bs, bv;
      memcpy(&bs, &ys, 8);
      memcpy(&bv, &yv, 8);
      const i64 d = bs > bv ? bs - bv : bv - bs;
      if (d > worst) worst = d;
    }
  }
  return (double)worst;
}
