/**
 * The `native` tfjs backend: tfjs-backend-cpu's backend class and kernels (tensor data in plain
 * JS TypedArrays), with the hot kernels replaced by native code called through Deno FFI on that
 * same memory (no copies):
 *
 * | kernel | implementation |
 * |---|---|
 * | `BatchMatMul` | system CBLAS `sgemm` (transpose flags passed to BLAS; batches as one call per slice, or folded into rows) |
 * | `FlRmsNorm`, `FlRmsNormGrad` | fused RMSNorm forward / backward (kernels/norm.c) |
 * | `FlAttention`, `FlAttentionGrad` | fused causal attention: RoPE, scale, QKᵀ, causal softmax, PV, from the packed qkv projection |
 * | `FlSwiglu`, `FlSwigluGrad` | fused `silu(a) * b` |
 * | `FlExpertGate`, `FlExpertGateGrad` | fused output-guided sigmoid gates of fine-grained experts (Finedeep) |
 * | `FlGatedMul`, `FlGatedMulGrad` | `y · sigmoid(z)` of a one-column gate (FineRMoE's gated shared expert), the composite's bits |
 * | `FlCrossEntropy`, `FlCrossEntropyGrad` | fused mean cross-entropy from logits and int targets |
 * | `FlAdamW` | one AdamW update (new p, m, v; optionally the clip's `g * scale` first), streamed out |
 * | `FlSumSquares` | `sum(square(x))` of many tensors (the gradient norm), the tensors shared among the threads |
 * | `Add`, `Sub`, `Multiply`, `RealDiv` (float32, any broadcasting), `AddN` | native loops, one float32 operation per element (bit-identical to cpu) |
 * | `Sum`, `Mean` (float32, a contiguous block of axes) | native, double accumulation in cpu's order (bit-identical) |
 * | `Square`, `Neg`, `Sigmoid`, `Rsqrt`, `Sqrt` (float32) | native (sigmoid, rsqrt in double like cpu's JS) |
 * | `Softmax` (float32, last axis) | native (vectorised exp; ~1e-7 from cpu's double-precision exp) |
 * | `Transpose`, `Slice`, `SplitV`, `Concat`, `PadV2`, `GatherV2` (axis 0), `UnsortedSegmentSum` | JS row copies / one pass (tfjs-backend-cpu's index-per-element loops took 13 s per step for the embedding gradient) |
 * | `TopK` (k ≤ 8, finite values) | one insertion pass per row (cpu selects then sorts every row: 12 ms for [2048, 64]) |
 *
 * The `Fl*` kernels exist only on this backend; lib/backends/fused.ts uses them when the active
 * backend has them and the equivalent composite tfjs ops otherwise. Every other kernel is
 * tfjs-backend-cpu's (pure JS).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs"; // registers the cpu backend, whose class and kernels we reuse
import type { DataType, KernelConfig, KernelFunc } from "@tensorflow/tfjs-core";
import type { Blas } from "./blas.ts";
import type { KernelSymbols } from "./kernels.ts";
import { type CpuBackend, pool } from "./tensors.ts";
import { GENERIC_KERNELS, genericKernels } from "./generic_kernels.ts";
import { FUSED_KERNELS, fusedKernels } from "./fused_kernels.ts";

export { FD_ROWS } from "./fused_kernels.ts";

/** Name the backend is registered under. */
export const NATIVE_BACKEND = "native";

/** Kernels replaced or added on the native backend (recorded in backend details). */
export const NATIVE_KERNELS = [...GENERIC_KERNELS, ...FUSED_KERNELS] as const;

let registered = false;

/**
 * Registers the `native` backend (once per process): a tfjs-backend-cpu backend instance with all
 * of cpu's kernels, then {@link NATIVE_KERNELS} on top. The caller loads BLAS and the kernels first.
 */
export function registerNativeBackend(blas: Blas, kernels: KernelSymbols): void {
  if (registered) return;
  const cpu = tf.findBackend("cpu") as unknown as { constructor: new () => CpuBackend } | null;
  if (!cpu) throw new Error("native backend: tfjs-backend-cpu is not registered (import @tensorflow/tfjs)");
  const Ctor = cpu.constructor;
  const cpuKernels = new Map(tf.getKernelsForBackend("cpu").map((c) => [c.kernelName, c]));
  const cpuKernel = (name: string): KernelFunc => {
    const c = cpuKernels.get(name);
    if (!c) throw new Error(`native backend: cpu has no ${name} kernel to fall back to`);
    return c.kernelFunc;
  };
  /** tfjs-backend-cpu's backend, with our outputs' arrays recycled through {@link pool}. */
  class NativeBackend extends (Ctor as new () => CpuBackend) {
    constructor() {
      super();
      this.firstUse = false; // skips tfjs-backend-cpu's "install tfjs-node" banner
    }
    override write(values: unknown, shape: number[], dtype: DataType): object {
      pool.hold(values);
      return super.write(values, shape, dtype);
    }
    override readSync(dataId: object): unknown {
      const v = this.data.get(dataId).values;
      return pool.owns(v) ? v.slice() : super.readSync(dataId); // pooled memory never escapes
    }
    override disposeData(dataId: object, force = false): boolean {
      const v = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
      const deleted = super.disposeData(dataId, force);
      if (deleted && v !== undefined && !this.data.has(dataId)) pool.release(v);
      return deleted;
    }
  }
  tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend() as unknown as tf.KernelBackend, 0);
  for (const c of cpuKernels.values()) {
    tf.registerKernel({ ...c, backendName: NATIVE_BACKEND } as KernelConfig);
  }
  // The Finedeep block's C code calls the same sgemm (kernels/finedeep.c fl_set_sgemm).
  if (kernels.fl_set_sgemm(new TextEncoder().encode(blas.path + "\0")) !== 1) {
    throw new Error(`native backend: the kernels library could not find cblas_sgemm in ${blas.path}`);
  }
  const mine = { ...genericKernels(blas, kernels, cpuKernel), ...fusedKernels(kernels) };
  for (const name of NATIVE_KERNELS) {
    if (tf.getKernel(name, NATIVE_BACKEND)) tf.unregisterKernel(name, NATIVE_BACKEND);
    tf.registerKernel({
      kernelName: name,
      backendName: NATIVE_BACKEND,
      kernelFunc: mine[name] as unknown as KernelFunc,
    });
  }
  registered = true;
}
