#include "fl.h"

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

/* ---- gated output: y · sigmoid(z), z one column (FineRMoE's gated shared expert) ---------------------------
 * The bits of the composite `mul(y, sigmoid(z))` and its tape gradient, per element as those kernels compute:
 * sigmoid in double rounded once (the Sigmoid kernel), each product rounded to float32, the row sum of dy·y in
 * double in column order (the Sum kernel), then Sigmoid's gradient dg·(g·(1 − g)). */
__attribute__((optimize("fp-contract=off"))) void fl_gated_mul_fwd(const float *y, const float *z, float *out,
                                                                    float *g, int N, int D) {
  sigmoid_exact(z, g, 0, N);
#pragma omp parallel for schedule(static) if ((i64)N * D > 262144)
  for (int r = 0; r < N; r++) {
    const float gr = g[r];
    const float *yr = y + (i64)r * D;
    float *o = out + (i64)r * D;
    for (int j = 0; j < D; j++) o[j] = yr[j] * gr;
  }
}

__attribute__((optimize("fp-contract=off"))) void fl_gated_mul_bwd(const float *dy, const float *y, const float *g,
                                                                    float *dY, float *dz, int N, int D) {
#pragma omp parallel for schedule(static) if ((i64)N * D > 262144)
  for (int r = 0; r < N; r++) {
    const float *dr = dy + (i64)r * D, *yr = y + (i64)r * D, gr = g[r];
    float *o = dY + (i64)r * D;
    double acc = 0.0;
    for (int j = 0; j < D; j++) {
      o[j] = dr[j] * gr;
      const float t = dr[j] * yr[j];
      acc += (double)t;
    }
    const float dg = (float)acc, one_minus = 1.f - gr, slope = gr * one_minus;
    dz[r] = dg * slope;
  }
}
