/**
 * Fused kernels of lib/backends/fused.ts for the wasm backend.
 *
 * | kernel | how | replaces (composite, per call) |
 * |---|---|---|
 * | `FlFinedeep`, `FlFinedeepGrad` | XNNPACK products + wasm SIMD passes (wasm_simd/kernels.c) on the heap | ~15 ops per sub-layer forward, ~35 backward |
 * | `FlExpertGate`, `FlExpertGateGrad` | JS over zero-copy views of the wasm heap | mul, sum, sigmoid, 2 reshapes, broadcast mul (+ ~10 gradient kernels) |
 * | `FlRmsNorm`, `FlSwiglu`, `FlCrossEntropy` (+ gradients), `FlAdamW` | wasm SIMD on the heap | 5-15 small kernels each (AdamW: ~10 per parameter, 16 -> 2.5 ms per step) |
 *
 * FlFinedeep is the default Finedeep block (issue 6 part 4: Finedeep within 1.1x of dense): the
 * native backend's kernel of the same name, with the products through the wasm backend's BatchMatMul
 * (lib/backends/wasm_kernels.ts) and the element-wise passes (residual add + norm, SwiGLU + gates,
 * and their backward) in 128-bit wasm SIMD, compiled from C and run on tfjs's own memory
 * (lib/backends/wasm_simd/). Measured on the reference model (bench/README.md): Finedeep/dense step
 * time 1.11-1.13 with the composite ops (fastest steps), 1.00-1.04 with this.
 *
 * FlExpertGate (the gates alone, for Finedeep's other norm placements) is JS: where the composite form
 * is many small wasm kernels and the arithmetic is light, one JS pass is faster. Measured (forward +
 * backward of one sub-layer's gates, N=2048, K=4, E=24, on a loaded 2-vCPU machine): 3.9-9.3 ms fused
 * against 6.2-15.9 ms composite (min of 15, three alternations).
 *
 * Outputs are allocated before any heap view is taken (malloc may grow the heap and detach views).
 * Sums run in a fixed order (rows in order), so results are deterministic.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelFunc, NamedAttrMap, TensorInfo } from "@tensorflow/tfjs-core";
import { finedeepGrad as finedeepGradLoop } from "./finedeep_grad.ts";
import { kernelOf, registerKernels } from "./register.ts";
import { simdHeap, type WasmHeapBackend } from "./wasm_simd/mod.ts";

interface WasmBackend extends WasmHeapBackend {
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

interface Args {
  inputs: Record<string, TensorInfo>;
  attrs: NamedAttrMap;
  backend: WasmBackend;
}

/** Kernels added to the wasm backend (recorded in backend details). */
export const WASM_FUSED_KERNELS = [
  "FlRmsNorm",
  "FlRmsNormGrad",
  "FlSwiglu",
  "FlSwigluGrad",
  "FlCrossEntropy",
  "FlCrossEntropyGrad",
  "FlAdamW",
  "FlExpertGate",
  "FlExpertGateGrad",
  "FlFinedeep",
  "FlFinedeepGrad",
] as const;

function f32(backend: WasmBackend, t: TensorInfo): Float32Array {
  if (t.dtype !== "float32") throw new Error(`wasm fused kernel: expected float32, got ${t.dtype}`);
  return backend.typedArrayFromHeap(t) as Float32Array;
}

/**
 * sum_i a[ia + i] * b[ib + i] for i < n, in float64 with 4 interleaved partial sums (fixed order): one
 * running sum rounded to float32 at every step is a chain of dependent operations, which made the gate
 * kernel ~2x slower (23 -> 12 ms per training step measured).
 */
function dot4(a: Float32Array, ia: number, b: Float32Array, ib: number, n: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[ia + i] * b[ib + i];
    s1 += a[ia + i + 1] * b[ib + i + 1];
    s2 += a[ia + i + 2] * b[ib + i + 2];
    s3 += a[ia + i + 3] * b[ib + i + 3];
  }
  for (; i < n; i++) s0 += a[ia + i] * b[ib + i];
  return (s0 + s1) + (s2 + s3);
}

/** prod [N, K*E], u [K*E] -> [gated, g [N, K]]: g = sigmoid(block sums of prod * u), gated = prod * g. */
function expertGate({ inputs: { prod, u }, attrs, backend }: Args): TensorInfo[] {
  const K = attrs.k as number, N = prod.shape[0], H = prod.shape[1], E = H / K;
  const gatedT = backend.makeOutput([N, H], "float32"), gT = backend.makeOutput([N, K], "float32");
  const p = f32(backend, prod), uu = f32(backend, u), o = f32(backend, gatedT), g = f32(backend, gT);
  for (let n = 0; n < N; n++) {
    const row = n * H;
    for (let k = 0; k < K; k++) {
      const b = row + k * E, ub = k * E;
      const gk = Math.fround(1 / (1 + Math.exp(-dot4(p, b, uu, ub, E))));
      g[n * K + k] = gk;
      for (let e = 0; e < E; e++) o[b + e] = p[b + e] * gk;
    }
  }
  return [gatedT, gT];
}

/** dy, prod, u, g -> [dprod, du]: dz = g(1-g) sum_e dy*prod; dprod = dy*g + dz*u; du = sum_n dz*prod. */
function expertGateGrad({ inputs: { dy, prod, u, g }, attrs, backend }: Args): TensorInfo[] {
  const K = attrs.k as number, N = prod.shape[0], H = prod.shape[1], E = H / K;
  const dprodT = backend.makeOutput([N, H], "float32"), duT = backend.makeOutput([...u.shape], "float32");
  const d = f32(backend, dy), p = f32(backend, prod), uu = f32(backend, u), gg = f32(backend, g);
  const dp = f32(backend, dprodT), du = f32(backend, duT);
  const acc = new Float64Array(H);
  for (let n = 0; n < N; n++) {
    const row = n * H;
    for (let k = 0; k < K; k++) {
      const b = row + k * E, ub = k * E, gk = gg[n * K + k];
      let s = 0;
      for (let e = 0; e < E; e++) s += d[b + e] * p[b + e];
      const dz = Math.fround(s * gk * (1 - gk));
      for (let e = 0; e < E; e++) {
        dp[b + e] = d[b + e] * gk + dz * uu[ub + e];
        acc[ub + e] += dz * p[b + e];
      }
    }
  }
  du.set(acc);
  return [dprodT, duT];
}

// ---- RMSNorm, SwiGLU (wasm SIMD) ---------------------------------------------------------------------

/** x [.., D], g [D] or none -> [y (x's shape), rstd [N]] (N = rows of x). */
function rmsnorm({ inputs: { x, g }, attrs, backend }: Args): TensorInfo[] {
  const D = x.shape[x.shape.length - 1], N = tf.util.sizeFromShape(x.shape) / D, { k, at, make } = simdHeap(backend);
  const y = make([...x.shape]), rstd = make([N]);
  k.rmsnorm_fwd(at(x), g ? at(g) : 0, at(y), at(rstd), N, D, attrs.eps as number);
  return [y, rstd];
}

/** dy, x, g (or none), rstd -> [dx, dg] with a gain, [dx] without. */
function rmsnormGrad({ inputs: { dy, x, g, rstd }, backend }: Args): TensorInfo[] {
  const D = x.shape[x.shape.length - 1], N = tf.util.sizeFromShape(x.shape) / D, { k, at, make } = simdHeap(backend);
  const dx = make([...x.shape]), dg = g ? make([D]) : null;
  k.rmsnorm_bwd(at(dy), at(x), g ? at(g) : 0, at(rstd), at(dx), dg ? at(dg) : 0, N, D);
  return dg ? [dx, dg] : [dx];
}

/** ab [N, 2H] -> silu(a) * b [N, H]. */
function swiglu({ inputs: { ab }, backend }: Args): TensorInfo {
  const N = ab.shape[0], H = ab.shape[1] / 2, { k, at, make } = simdHeap(backend), out = make([N, H]);
  k.swiglu_fwd(at(ab), at(out), N, H);
  return out;
}

/** dy [N, H], ab [N, 2H] -> dab [N, 2H]. */
function swigluGrad({ inputs: { dy, ab }, backend }: Args): TensorInfo {
  const N = ab.shape[0], H = ab.shape[1] / 2, { k, at, make } = simdHeap(backend), dab = make([N, 2 * H]);
  k.swiglu_bwd(at(dy), at(ab), at(dab), N, H);
  return dab;
}

// ---- cross-entropy, AdamW (wasm SIMD) ------------------------------------------------------------------

/**
 * logits [N, V], targets int32 [N] -> [mean loss (scalar), lse [N]]. Row max and sum of exponentials in
 * SIMD; lse = max + log(sum) per row here (wasm has no log); the rows' losses summed in float64, in order.
 */
function crossEntropy({ inputs: { logits, targets }, backend }: Args): TensorInfo[] {
  const [N, V] = logits.shape, { k, at, make, free } = simdHeap(backend);
  const loss = make([]), lse = make([N]), se = make([N]);
  k.xent_rows(at(logits), at(lse), at(se), N, V);
  const l = f32(backend, logits), z = f32(backend, lse), s = f32(backend, se);
  const t = backend.typedArrayFromHeap(targets) as Int32Array;
  let acc = 0;
  for (let i = 0; i < N; i++) {
    z[i] = Math.fround(z[i] + Math.fround(Math.log(s[i])));
    if (t[i] >= 0 && t[i] < V) acc += Math.fround(z[i] - l[i * V + t[i]]);
  }
  f32(backend, loss)[0] = acc / N;
  free(se);
  return [loss, lse];
}

/** dy (scalar), logits, targets, lse -> dlogits = (softmax - onehot) * dy / N. */
function crossEntropyGrad({ inputs: { dy, logits, targets, lse }, backend }: Args): TensorInfo {
  const [N, V] = logits.shape, { k, at, make } = simdHeap(backend), dl = make([N, V]);
  const sc = Math.fround(f32(backend, dy)[0] / N);
  k.xent_bwd(sc, at(logits), at(targets, ["int32"]), at(lse), at(dl), N, V);
  return dl;
}

/** p, m, v, g (same shape) -> [p1, m1, v1]: lib/train/optim.ts's formula, rounded as the composite ops. */
function adamw({ inputs: { p, m, v, g }, attrs, backend }: Args): TensorInfo[] {
  const { k, at, make } = simdHeap(backend), [p1, m1, v1] = [0, 1, 2].map(() => make([...p.shape]));
  const a = (name: string) => attrs[name] as number;
  k.adamw(
    at(p),
    at(m),
    at(v),
    at(g),
    at(p1),
    at(m1),
    at(v1),
    tf.util.sizeFromShape(p.shape),
    a("b1"),
    a("c1"),
    a("b2"),
    a("c2"),
    a("sqrtBc2"),
    a("eps"),
    a("decay"),
    a("step"),
  );
  return [p1, m1, v1];
}

// ---- Finedeep block ------------------------------------------------------------------------------

/** op(a) @ op(b) through the wasm backend's BatchMatMul kernel (lib/backends/wasm_kernels.ts: XNNPACK). */
function matmul(
  backend: WasmBackend,
  a: TensorInfo,
  b: TensorInfo,
  transposeA = false,
  transposeB = false,
): TensorInfo {
  const attrs = { transposeA, transposeB };
  return kernelOf("BatchMatMul", "wasm")({ inputs: { a, b }, attrs, backend: backend as never }) as TensorInfo;
}

/**
 * The default Finedeep block (lib/backends/fused.ts finedeepBlock), the wasm form of the native
 * backend's FlFinedeep with the same inputs, attrs and outputs: per sub-layer two XNNPACK products and
 * the element-wise passes of wasm_simd/kernels.c on the heap in place (residual add + gainless norm +
 * running sum of the outputs; SwiGLU + gates). Outputs: [Σ y_m, ab_m.., gated_m.., g_m.., u_m..,
 * xm_m.. (m >= 1), rstd_m.. (m >= 1)]. The outputs are summed ((y_0 + y_1) + ..) + y_{M-1}, as AddN.
 */
function finedeep({ inputs, attrs, backend }: Args): TensorInfo[] {
  const M = attrs.m as number, K = attrs.k as number, eps = attrs.eps as number;
  const [N, D] = inputs.x.shape, H = inputs.w2_0.shape[0], E = H / K;
  const { k, at, make, free } = simdHeap(backend);
  const ab: TensorInfo[] = [], gated: TensorInfo[] = [], g: TensorInfo[] = [], u: TensorInfo[] = [];
  const xms: TensorInfo[] = [], rstds: TensorInfo[] = [];
  for (let m = 0; m < M; m++) {
    u.push(make([H]));
    k.fd_u(at(inputs[`w2_${m}`]), at(inputs[`r_${m}`]), at(u[m]), K, E, D);
  }
  const scratch = make([H]), stream = M > 1 ? make([N, D]) : null;
  let sum: TensorInfo | null = null, y: TensorInfo | null = null; // Σ y so far; y_{m-1} (m >= 2)
  for (let m = 0; m < M; m++) {
    let xm = inputs.x;
    if (m > 0) {
      // m = 1: stream = h + y_0 (y_0 is sum); later: stream += y_{m-1}, sum += y_{m-1}.
      xm = make([N, D]);
      const rstd = make([N]);
      const from = m === 1 ? inputs.h : stream!, prev = m === 1 ? sum! : y!;
      k.fd_resid_fwd(at(from), at(prev), at(stream!), m === 1 ? 0 : at(sum!), at(xm), at(rstd), N, D, eps);
      if (m > 1) free(y);
      xms.push(xm);
      rstds.push(rstd);
    }
    ab.push(matmul(backend, xm, inputs[`w13_${m}`]));
    gated.push(make([N, H]));
    g.push(make([N, K]));
    k.swiglu_gate_fwd(at(ab[m]), at(u[m]), at(gated[m]), at(g[m]), at(scratch), N, K, E);
    const ym = matmul(backend, gated[m], inputs[`w2_${m}`]);
    if (m === 0) sum = ym;
    else if (m === M - 1) {
      k.add(at(sum!), at(ym), at(sum!), N * D);
      free(ym);
    } else y = ym;
  }
  free(scratch);
  free(stream);
  return [sum!, ...ab, ...gated, ...g, ...u, ...xms, ...rstds];
}

/**
 * Backward of {@link finedeep}, the wasm form of the native FlFinedeepGrad (same inputs and outputs:
 * dx, dh (m > 1), then dw13_m, dw2_m, dr_m per sub-layer): lib/backends/finedeep_grad.ts's loop with
 * the SIMD passes.
 */
function finedeepGrad({ inputs, attrs, backend }: Args): TensorInfo[] {
  const K = attrs.k as number, [, D] = inputs.x.shape, H = inputs.w2_0.shape[0], E = H / K;
  const { k, at, make, free } = simdHeap(backend);
  const scratch = make([3 * H]);
  const grads = finedeepGradLoop(inputs, attrs, {
    matmul: (a, b, ta, tb) => matmul(backend, a, b, ta, tb),
    make,
    free,
    gateBwd: (t) =>
      k.swiglu_gate_bwd(
        at(t.dgated),
        at(t.ab),
        at(t.u),
        at(t.g),
        at(t.dab),
        at(t.du),
        at(scratch),
        t.dab.shape[0],
        K,
        E,
      ),
    residBwd: (t) =>
      k.fd_resid_bwd(
        at(t.dxm),
        at(t.xm),
        at(t.rstd),
        at(t.dout),
        at(t.dh),
        at(t.dy),
        t.dy.shape[0],
        D,
        t.first ? 1 : 0,
      ),
    uBwd: (t) => k.fd_u_bwd(at(t.du), at(t.w2), at(t.r), at(t.dw2), at(t.dr), K, E, D),
  });
  free(scratch);
  return grads;
}

const KERNELS: Record<(typeof WASM_FUSED_KERNELS)[number], KernelFunc> = {
  FlRmsNorm: rmsnorm as unknown as KernelFunc,
  FlRmsNormGrad: rmsnormGrad as unknown as KernelFunc,
  FlSwiglu: swiglu as unknown as KernelFunc,
  FlSwigluGrad: swigluGrad as unknown as KernelFunc,
  FlCrossEntropy: crossEntropy as unknown as KernelFunc,
  FlCrossEntropyGrad: crossEntropyGrad as unknown as KernelFunc,
  FlAdamW: adamw as unknown as KernelFunc,
  FlExpertGate: expertGate as unknown as KernelFunc,
  FlExpertGateGrad: expertGateGrad as unknown as KernelFunc,
  FlFinedeep: finedeep as unknown as KernelFunc,
  FlFinedeepGrad: finedeepGrad as unknown as KernelFunc,
};

/** Registers {@link WASM_FUSED_KERNELS} on the wasm backend (idempotent). */
export function installWasmFusedKernels(): void {
  registerKernels("wasm", KERNELS);
}
