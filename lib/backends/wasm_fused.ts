/**
 * Fused kernels of lib/backends/fused.ts for the wasm backend, written in JS over zero-copy views
 * of the wasm heap: where the composite form is many small wasm kernels (each with its own call
 * overhead and heap round trip) and the arithmetic is light, one JS pass is faster.
 *
 * | kernel | replaces (composite, per call) |
 * |---|---|
 * | `FlExpertGate`, `FlExpertGateGrad` | mul, sum, sigmoid, 2 reshapes, broadcast mul (+ ~10 gradient kernels) |
 *
 * Measured (forward + backward of one Finedeep sub-layer's gates, N=2048, K=4, E=24, on a loaded
 * 2-vCPU machine): 3.9-9.3 ms fused against 6.2-15.9 ms composite (min of 15, three alternations).
 * The other fused ops stay composite on wasm: attention and cross-entropy are matrix products
 * (XNNPACK), SwiGLU needs exp per element, RMSNorm and AdamW are a few wasm SIMD kernels.
 *
 * Outputs are allocated before any heap view is taken (malloc may grow the heap and detach views).
 * Sums run in a fixed order (rows in order), so results are deterministic.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { DataType, KernelFunc, NamedAttrMap, TensorInfo } from "@tensorflow/tfjs-core";

interface WasmBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

interface Args {
  inputs: Record<string, TensorInfo>;
  attrs: NamedAttrMap;
  backend: WasmBackend;
}

/** Kernels added to the wasm backend (recorded in backend details). */
export const WASM_FUSED_KERNELS = ["FlExpertGate", "FlExpertGateGrad"] as const;

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

const KERNELS: Record<(typeof WASM_FUSED_KERNELS)[number], KernelFunc> = {
  FlExpertGate: expertGate as unknown as KernelFunc,
  FlExpertGateGrad: expertGateGrad as unknown as KernelFunc,
};

let installed = false;

/** Registers {@link WASM_FUSED_KERNELS} on the wasm backend (idempotent). */
export function installWasmFusedKernels(): void {
  if (installed) return;
  for (const name of WASM_FUSED_KERNELS) {
    if (tf.getKernel(name, "wasm")) tf.unregisterKernel(name, "wasm");
    tf.registerKernel({ kernelName: name, backendName: "wasm", kernelFunc: KERNELS[name] });
  }
  installed = true;
}
