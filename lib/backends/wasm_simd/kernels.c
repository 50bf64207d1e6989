/*
 * finelab wasm SIMD kernels: the element-wise passes of the fused Finedeep block for the wasm
 * backend (lib/backends/wasm_fused.ts FlFinedeep / FlFinedeepGrad), compiled to WebAssembly with
 * 128-bit SIMD. The matrix products stay with tfjs-backend-wasm (XNNPACK); these passes are the
 * same math as lib/backends/native/kernels/finedeep.c fl_fd_* and fl_swiglu_gate_* (see there).
 *
 * The module imports tfjs-backend-wasm's own memory and runs on the tensors where they are: every
 * pointer is a byte offset into that heap (0 = NULL). So it must never touch memory it was not
 * given: no static data, no stack frames in linear memory, no libc. lib/backends/wasm_simd/build.ts
 * compiles it (`deno task build:wasm`, clang with --target=wasm32 -msimd128 -nostdlib) and refuses
 * a binary with a data section or a use of the stack pointer; the result is committed as base64 in
 * kernels_wasm.ts, so users need no compiler.
 *
 * Single-threaded (tfjs-wasm has no threads under Deno); every sum runs in a fixed order, so results
 * are deterministic. The vector helpers are in vec4.h.
 */
#include "vec4.h"

#define EXPORT(name) __attribute__((export_name(#name)))
/* Two vectors per iteration in the exp loops: independent dependency chains (measured ~20% faster). */
#define UNROLL2 _Pragma("clang loop unroll_count(2)")

EXPORT(abi_version) int abi_version(void) { return 5; }

/* out[i] = a[i] + b[i]. */
EXPORT(add) void add(const float *a, const float *b, float *out, int n) {
  int i = 0;
  for (; i + 4 <= n; i += 4) vstore(out + i, vload(a + i) + vload(b + i));
  for (; i < n; i++) out[i] = a[i] + b[i];
}

/* u[k*E+e] = w2[k*E+e] . r[k]: u_k = W2_k r_k (compute.md section 5). w2 [K*E, D], r [K, D]. */
EXPORT(fd_u) void fd_u(const float *w2, const float *r, float *u, int K, int E, int D) {
  for (int k = 0; k < K; k++)
    for (int e = 0; e < E; e++) u[k * E + e] = dot(w2 + (k * E + e) * D, r + k * D, D);
}

/* Backward of fd_u: dw2 += du (x) r per expert block (dw2 holds the matmul's gradient already);
 * dr[k] = sum_e du[k*E+e] * w2[k*E+e] (in e order). */
EXPORT(fd_u_bwd) void fd_u_bwd(const float *du, const float *w2, const float *r, float *dw2, float *dr, int K, int E,
                               int D) {
  for (int k = 0; k < K; k++) {
    const float *rk = r + k * D;
    float *drk = dr + k * D;
    for (int j = 0; j < D; j++) drk[j] = 0.f;
    for (int e = 0; e < E; e++) {
      const int h = k * E + e;
      const float d = du[h];
      const float *w = w2 + h * D;
      float *dw = dw2 + h * D;
      int j = 0;
      for (; j + 4 <= D; j += 4) {
        vstore(dw + j, vload(dw + j) + vsplat(d) * vload(rk + j));
        vstore(drk + j, vload(drk + j) + vsplat(d) * vload(w + j));
      }
      for (; j < D; j++) {
        dw[j] += d * rk[j];
        drk[j] += d * w[j];
      }
    }
  }
}

/* SwiGLU and the expert gates in one pass per row: ab [N, 2H] = [a | b] (H = K*E), prod = silu(a) * b,
 * g = sigmoid(prod_k . u_k) [N, K], gated = prod * g per expert block. p: scratch [H]. */
EXPORT(swiglu_gate_fwd)
void swiglu_gate_fwd(const float *ab, const float *u, float *gated, float *g, float *p, int N, int K, int E) {
  const int H = K * E;
  for (int n = 0; n < N; n++) {
    const float *a = ab + n * 2 * H, *b = a + H;
    float *o = gated + n * H, *gr = g + n * K;
    int j = 0;
    UNROLL2 for (; j + 4 <= H; j += 4) {
      const v4 av = vload(a + j);
      vstore(p + j, av * vsigmoid(av) * vload(b + j));
    }
    for (; j < H; j++) p[j] = a[j] * sigmoid1(a[j]) * b[j];
    for (int k = 0; k < K; k++) {
      const float gk = sigmoid1(dot(p + k * E, u + k * E, E));
      const float *pk = p + k * E;
      float *ok = o + k * E;
      gr[k] = gk;
      int e = 0;
      for (; e + 4 <= E; e += 4) vstore(ok + e, vload(pk + e) * vsplat(gk));
      for (; e < E; e++) ok[e] = pk[e] * gk;
    }
  }
}

/* Backward of swiglu_gate_fwd (prod recomputed from ab): dprod = dgated * g + dz * u with
 * dz = g (1 - g) sum_e dgated * prod; then SwiGLU's backward into dab [N, 2H]; du [H] = sum over
 * rows (in order) of dz * prod. s: scratch [3H] (sigmoid(a), prod, dprod). */
EXPORT(swiglu_gate_bwd)
void swiglu_gate_bwd(const float *dgated, const float *ab, const float *u, const float *g, float *dab, float *du,
                     float *s, int N, int K, int E) {
  const int H = K * E;
  float *sg = s, *p = s + H, *dp = s + 2 * H;
  for (int h = 0; h < H; h++) du[h] = 0.f;
  for (int n = 0; n < N; n++) {
    const float *a = ab + n * 2 * H, *b = a + H, *dg = dgated + n * H;
    float *da = dab + n * 2 * H, *db = da + H;
    int j = 0;
    UNROLL2 for (; j + 4 <= H; j += 4) {
      const v4 av = vload(a + j), sv = vsigmoid(av);
      vstore(sg + j, sv);
      vstore(p + j, av * sv * vload(b + j));
    }
    for (; j < H; j++) {
      sg[j] = sigmoid1(a[j]);
      p[j] = a[j] * sg[j] * b[j];
    }
    for (int k = 0; k < K; k++) {
      const int o = k * E;
      const float gk = g[n * K + k];
      const float dz = dot(dg + o, p + o, E) * gk * (1.f - gk);
      int e = 0;
      for (; e + 4 <= E; e += 4) {
        vstore(dp + o + e, vload(dg + o + e) * vsplat(gk) + vsplat(dz) * vload(u + o + e));
        vstore(du + o + e, vload(du + o + e) + vsplat(dz) * vload(p + o + e));
      }
      for (; e < E; e++) {
        dp[o + e] = dg[o + e] * gk + dz * u[o + e];
        du[o + e] += dz * p[o + e];
      }
    }
    for (j = 0; j + 4 <= H; j += 4) {
      const v4 sv = vload(sg + j), av = vload(a + j), dpv = vload(dp + j), sl = av * sv;
      vstore(db + j, dpv * sl);
      vstore(da + j, dpv * vload(b + j) * (sv + sl * (vsplat(1.f) - sv)));
    }
    for (; j < H; j++) {
      const float sl = a[j] * sg[j];
      db[j] = dp[j] * sl;
      da[j] = dp[j] * b[j] * (sg[j] + sl * (1.f - sg[j]));
    }
  }
}

/* Residual step between sub-layers, per row of [N, D]: stream = a + y; out += y (out may be NULL);
 * xm = stream * rstd, rstd = 1 / sqrt(mean(stream^2) + eps). stream may alias a. */
EXPORT(fd_resid_fwd)
void fd_resid_fwd(const float *a, const float *y, float *stream, float *out, float *xm, float *rstd, int N, int D,
                  float eps) {
  for (int i = 0; i < N; i++) {
    const int o = i * D;
    float *s = stream + o, *x = xm + o;
    const float *ar = a + o, *yr = y + o;
    v4 ss = vsplat(0.f);
    int j = 0;
    for (; j + 4 <= D; j += 4) {
      const v4 yv = vload(yr + j), sv = vload(ar + j) + yv;
      vstore(s + j, sv);
      if (out) vstore(out + o + j, vload(out + o + j) + yv);
      ss += sv * sv;
    }
    float sum = hsum(ss);
    for (; j < D; j++) {
      s[j] = ar[j] + yr[j];
      if (out) out[o + j] += yr[j];
      sum += s[j] * s[j];
    }
    const float r = 1.f / __builtin_sqrtf(sum / (float)D + eps);
    rstd[i] = r;
    for (j = 0; j + 4 <= D; j += 4) vstore(x + j, vload(s + j) * vsplat(r));
    for (; j < D; j++) x[j] = s[j] * r;
  }
}

/* Backward of the residual step: gm = rstd * (dxm - xm * mean(dxm * xm)); G = first ? gm : G + gm
 * (the stream's gradient from the later sub-layers); dy = dout + G. */
EXPORT(fd_resid_bwd)
void fd_resid_bwd(const float *dxm, const float *xm, const float *rstd, const float *dout, float *G, float *dy, int N,
                  int D, int first) {
  for (int i = 0; i < N; i++) {
    const int o = i * D;
    const float *d = dxm + o, *x = xm + o, *dor = dout + o;
    float *gr = G + o, *dyr = dy + o;
    const v4 r = vsplat(rstd[i]), mdot = vsplat(dot(d, x, D) / (float)D);
    int j = 0;
    for (; j + 4 <= D; j += 4) {
      v4 gm = r * (vload(d + j) - vload(x + j) * mdot);
      if (!first) gm += vload(gr + j);
      vstore(gr + j, gm);
      vstore(dyr + j, vload(dor + j) + gm);
    }
    for (; j < D; j++) {
      float gm = r[0] * (d[j] - x[j] * mdot[0]);
      if (!first) gm += gr[j];
      gr[j] = gm;
      dyr[j] = dor[j] + gm;
    }
  }
}

/* ---- kernels of every model (lib/backends/wasm_fused.ts FlRmsNorm, FlSwiglu) -------------------- */

/* y = x * rstd * g, rstd = 1 / sqrt(mean(x^2) + eps) per row of x [N, D]; g = NULL: no gain. */
EXPORT(rmsnorm_fwd)
void rmsnorm_fwd(const float *x, const float *g, float *y, float *rstd, int N, int D, float eps) {
  for (int i = 0; i < N; i++) {
    const float *xr = x + i * D;
    float *yr = y + i * D;
    const float r = 1.f / __builtin_sqrtf(dot(xr, xr, D) / (float)D + eps);
    rstd[i] = r;
    int j = 0;
    if (g) {
      for (; j + 4 <= D; j += 4) vstore(yr + j, vload(xr + j) * vsplat(r) * vload(g + j));
      for (; j < D; j++) yr[j] = xr[j] * r * g[j];
    } else {
      for (; j + 4 <= D; j += 4) vstore(yr + j, vload(xr + j) * vsplat(r));
      for (; j < D; j++) yr[j] = xr[j] * r;
    }
  }
}

/* dx = rstd * (dy*g - xhat * mean(dy*g*xhat)), xhat = x * rstd; dg = sum over rows (in order) of
 * dy * xhat. g = NULL: no gain (dy*g = dy; dg not written). */
EXPORT(rmsnorm_bwd)
void rmsnorm_bwd(const float *dy, const float *x, const float *g, const float *rstd, float *dx, float *dg, int N,
                 int D) {
  if (g)
    for (int j = 0; j < D; j++) dg[j] = 0.f;
  for (int i = 0; i < N; i++) {
    const float *xr = x + i * D, *dyr = dy + i * D;
    float *dxr = dx + i * D;
    const float r = rstd[i];
    const v4 rv = vsplat(r);
    v4 acc = vsplat(0.f);
    int j = 0;
    for (; j + 4 <= D; j += 4) {
      const v4 d = g ? vload(dyr + j) * vload(g + j) : vload(dyr + j);
      acc += d * (vload(xr + j) * rv);
    }
    float s = hsum(acc);
    for (; j < D; j++) s += (g ? dyr[j] * g[j] : dyr[j]) * (xr[j] * r);
    const float mdot = s / (float)D;
    for (j = 0; j + 4 <= D; j += 4) {
      const v4 xh = vload(xr + j) * rv, dyv = vload(dyr + j);
      const v4 d = g ? dyv * vload(g + j) : dyv;
      vstore(dxr + j, rv * (d - xh * vsplat(mdot)));
      if (g) vstore(dg + j, vload(dg + j) + dyv * xh);
    }
    for (; j < D; j++) {
      const float xh = xr[j] * r, d = g ? dyr[j] * g[j] : dyr[j];
      dxr[j] = r * (d - xh * mdot);
      if (g) dg[j] += dyr[j] * xh;
    }
  }
}

/* ab [N, 2H] = [a | b] -> out [N, H] = silu(a) * b. */
EXPORT(swiglu_fwd) void swiglu_fwd(const float *ab, float *out, int N, int H) {
  for (int n = 0; n < N; n++) {
    const float *a = ab + n * 2 * H, *b = a + H;
    float *o = out + n * H;
    int j = 0;
    UNROLL2 for (; j + 4 <= H; j += 4) {
      const v4 av = vload(a + j);
      vstore(o + j, av * vsigmoid(av) * vload(b + j));
    }
    for (; j < H; j++) o[j] = a[j] * sigmoid1(a[j]) * b[j];
  }
}

/* Backward of swiglu_fwd: db = dh * silu(a), da = dh * b * (s + a s (1 - s)), s = sigmoid(a). */
EXPORT(swiglu_bwd) void swiglu_bwd(const float *dh, const float *ab, float *dab, int N, int H) {
  for (int n = 0; n < N; n++) {
    const float *a = ab + n * 2 * H, *b = a + H, *d = dh + n * H;
    float *da = dab + n * 2 * H, *db = da + H;
    int j = 0;
    UNROLL2 for (; j + 4 <= H; j += 4) {
      const v4 av = vload(a + j), sv = vsigmoid(av), sl = av * sv, dv = vload(d + j);
      vstore(db + j, dv * sl);
      vstore(da + j, dv * vload(b + j) * (sv + sl * (vsplat(1.f) - sv)));
    }
    for (; j < H; j++) {
      const float s = sigmoid1(a[j]), sl = a[j] * s;
      db[j] = d[j] * sl;
      da[j] = d[j] * b[j] * (s + sl * (1.f - s));
    }
  }
}

/* ---- data movement (lib/backends/wasm_kernels.ts Slice, SplitV, Concat) ------------------------- */

/* Transposes the last two axes: dst[b][c][r] = src[b][r][c] for `batch` [rows, cols] matrices of 4-byte
 * elements (lib/backends/wasm_kernels.ts, the transposed operands of BatchMatMul). 4 x 4 tiles through
 * vector shuffles, in 32-column strips so a strip's destination rows stay in cache; tfjs-wasm's
 * Transpose kernel (a scalar loop) took ~1.2-1.5 ms for [2048, 128], a quarter of a small product. */
EXPORT(transpose2d) void transpose2d(const float *src, float *dst, int batch, int rows, int cols) {
  for (int b = 0; b < batch; b++) {
    const float *s = src + (int64_t)b * rows * cols;
    float *d = dst + (int64_t)b * rows * cols;
    const int r4 = rows & ~3, c4 = cols & ~3;
    for (int c0 = 0; c0 < c4; c0 += 32) {
      const int c1 = c0 + 32 < c4 ? c0 + 32 : c4;
      for (int r = 0; r < r4; r += 4)
        for (int c = c0; c < c1; c += 4) {
          const v4 a = vload(s + r * cols + c), e = vload(s + (r + 1) * cols + c);
          const v4 f = vload(s + (r + 2) * cols + c), h = vload(s + (r + 3) * cols + c);
          const v4 ae0 = __builtin_shufflevector(a, e, 0, 4, 1, 5), ae1 = __builtin_shufflevector(a, e, 2, 6, 3, 7);
          const v4 fh0 = __builtin_shufflevector(f, h, 0, 4, 1, 5), fh1 = __builtin_shufflevector(f, h, 2, 6, 3, 7);
          vstore(d + c * rows + r, __builtin_shufflevector(ae0, fh0, 0, 1, 4, 5));
          vstore(d + (c + 1) * rows + r, __builtin_shufflevector(ae0, fh0, 2, 3, 6, 7));
          vstore(d + (c + 2) * rows + r, __builtin_shufflevector(ae1, fh1, 0, 1, 4, 5));
          vstore(d + (c + 3) * rows + r, __builtin_shufflevector(ae1, fh1, 2, 3, 6, 7));
        }
    }
    for (int r = r4; r < rows; r++) /* the last rows % 4 rows */
      for (int c = 0; c < cols; c++) d[c * rows + r] = s[r * cols + c];
    for (int r = 0; r < r4; r++) /* the last cols % 4 columns of the other rows */
      for (int c = c4; c < cols; c++) d[c * rows + r] = s[r * cols + c];
  }
}

/* dst[r * ldd + c] = src[r * lds + c] for r < rows, c < cols: 4-byte elements (float32 or int32 bits). */
EXPORT(copy2d) void copy2d(const float *src, int lds, float *dst, int ldd, int rows, int cols) {
  for (int r = 0; r < rows; r++) {
    const float *s = src + r * lds;
    float *d = dst + r * ldd;
    int c = 0;
    for (; c + 8 <= cols; c += 8) {
      const v4 a = vload(s + c), b = vload(s + c + 4);
      vstore(d + c, a);
      vstore(d + c + 4, b);
    }
    for (; c < cols; c++) d[c] = s[c];
  }
}

/* out[i] = x[ids[i]] for rows of D 4-byte words (GatherV2 on axis 0; ids checked by the caller). */
EXPORT(gather_rows) void gather_rows(const float *x, const int32_t *ids, float *out, int n, int D) {
  for (int i = 0; i < n; i++) {
    const float *s = x + ids[i] * D;
    float *d = out + i * D;
    int c = 0;
    for (; c + 4 <= D; c += 4) vstore(d + c, vload(s + c));
    for (; c < D; c++) d[c] = s[c];
  }
}

/* ---- AdamW and cross-entropy (lib/backends/wasm_fused.ts FlAdamW, FlCrossEntropy) ---------------- */

/* The AdamW formula of lib/train/optim.ts with every operation rounded to float32 in the composite's
 * order (wasm has no fused multiply-add, so nothing contracts): m1 = m*b1 + g*c1; v1 = v*b2 + (g*g)*c2;
 * p1 = p*decay - (m1 / (sqrt(v1)/sqrt_bc2 + eps)) * step. */
EXPORT(adamw)
void adamw(const float *p, const float *m, const float *v, const float *g, float *p1, float *m1, float *v1, int n,
           float b1, float c1, float b2, float c2, float sqrt_bc2, float eps, float decay, float step) {
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const v4 gv = vload(g + i);
    const v4 mm = vload(m + i) * vsplat(b1) + gv * vsplat(c1);
    const v4 vv = vload(v + i) * vsplat(b2) + (gv * gv) * vsplat(c2);
    vstore(m1 + i, mm);
    vstore(v1 + i, vv);
    const v4 denom = (v4)wasm_f32x4_sqrt((v128_t)vv) / vsplat(sqrt_bc2) + vsplat(eps);
    vstore(p1 + i, vload(p + i) * vsplat(decay) - (mm / denom) * vsplat(step));
  }
  for (; i < n; i++) {
    const float mm = m[i] * b1 + g[i] * c1, vv = v[i] * b2 + (g[i] * g[i]) * c2;
    m1[i] = mm;
    v1[i] = vv;
    p1[i] = p[i] * decay - (mm / (__builtin_sqrtf(vv) / sqrt_bc2 + eps)) * step;
  }
}

/* Per row of logits [N, V]: mx[i] = max_j l, se[i] = sum_j exp(l - mx) (the caller takes the log). */
EXPORT(xent_rows) void xent_rows(const float *logits, float *mx, float *se, int N, int V) {
  for (int i = 0; i < N; i++) {
    const float *l = logits + i * V;
    float m = l[0];
    for (int j = 1; j < V; j++) m = l[j] > m ? l[j] : m;
    v4 acc = vsplat(0.f);
    int j = 0;
    UNROLL2 for (; j + 4 <= V; j += 4) acc += vexp(vload(l + j) - vsplat(m));
    float s = hsum(acc);
    for (; j < V; j++) s += vexp(vsplat(l[j] - m))[0];
    mx[i] = m;
    se[i] = s;
  }
}

/* dlogits = (softmax(logits) - onehot(target)) * sc, sc = dloss / N; rows whose target is outside [0, V): 0. */
EXPORT(xent_bwd)
void xent_bwd(float sc, const float *logits, const int32_t *tgt, const float *lse, float *dl, int N, int V) {
  for (int i = 0; i < N; i++) {
    const float *l = logits + i * V;
    float *d = dl + i * V;
    const int t = tgt[i];
    if (!(t >= 0 && t < V)) {
      for (int j = 0; j < V; j++) d[j] = 0.f;
      continue;
    }
    const v4 z = vsplat(lse[i]);
    int j = 0;
    UNROLL2 for (; j + 4 <= V; j += 4) vstore(d + j, vexp(vload(l + j) - z) * vsplat(sc));
    for (; j < V; j++) d[j] = vexp(vsplat(l[j] - lse[i]))[0] * sc;
    d[t] -= sc;
  }
}
