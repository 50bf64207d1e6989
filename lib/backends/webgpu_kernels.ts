/**
 * Kernel fixes for `@tensorflow/tfjs-backend-webgpu` 4.22.
 *
 * | kernel | stock problem | replacement |
 * |---|---|---|
 * | `AddN` | one shader binds every input; with more inputs than `maxStorageBuffersPerShaderStage - 1` (7 on llvmpipe) pipeline creation fails and the result is silently 0 or stale (e.g. a global gradient norm of 0) | sums in chunks that fit the limit |
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";

/** Kernels replaced, by name (recorded in backend details). */
export const WEBGPU_KERNELS = ["AddN"] as const;

interface WebgpuBackend {
  device?: { limits?: { maxStorageBuffersPerShaderStage?: number } };
  disposeData(dataId: object): boolean;
}

let stockAddN: KernelFunc | null = null;
let installed = false;

function addN(args: { inputs: TensorInfo[]; backend: WebgpuBackend; attrs: object }): TensorInfo {
  const { inputs, backend } = args;
  const limit = backend.device?.limits?.maxStorageBuffersPerShaderStage ?? 8;
  const max = Math.max(2, limit - 1); // one binding is the output
  const run = (xs: TensorInfo[]) => stockAddN!({ inputs: xs, backend, attrs: {} } as never) as TensorInfo;
  if (inputs.length <= max) return run(inputs);
  let parts = inputs;
  const temps: TensorInfo[] = [];
  while (parts.length > max) {
    const next: TensorInfo[] = [];
    for (let i = 0; i < parts.length; i += max) {
      const chunk = parts.slice(i, i + max);
      if (chunk.length === 1) {
        next.push(chunk[0]);
        continue;
      }
      const r = run(chunk);
      temps.push(r);
      next.push(r);
    }
    parts = next;
  }
  const out = run(parts);
  for (const t of temps) backend.disposeData(t.dataId);
  return out;
}

/** Installs the webgpu fixes. Call after `tf.setBackend("webgpu")` resolved. Idempotent. */
export function installWebgpuKernels(): void {
  if (installed) return;
  const k = tf.getKernel("AddN", "webgpu");
  if (!k) throw new Error("webgpu backend has no AddN kernel to replace");
  stockAddN = k.kernelFunc;
  tf.unregisterKernel("AddN", "webgpu");
  tf.registerKernel({ kernelName: "AddN", backendName: "webgpu", kernelFunc: addN as unknown as KernelFunc });
  installed = true;
}
