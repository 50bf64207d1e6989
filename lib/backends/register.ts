/**
 * Kernel registration and lookup shared by the backends' kernel sets (wasm_kernels.ts, wasm_fused.ts, webgpu_fused.ts,
 * webgpu_kernels.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelFunc } from "@tensorflow/tfjs-core";

/** The kernel function registered as `kernelName` on `backendName`; throws naming both when there is none. */
export function kernelOf(kernelName: string, backendName: string): KernelFunc {
  const k = tf.getKernel(kernelName, backendName);
  if (!k) throw new Error(`the ${backendName} backend has no ${kernelName} kernel`);
  return k.kernelFunc;
}

/**
 * Registers each of `kernels` (by kernel name) on backend `backendName`, replacing a kernel already
 * registered under that name. Calling it again re-registers the same functions (idempotent).
 */
export function registerKernels(backendName: string, kernels: Readonly<Record<string, KernelFunc>>): void {
  for (const [kernelName, kernelFunc] of Object.entries(kernels)) {
    if (tf.getKernel(kernelName, backendName)) tf.unregisterKernel(kernelName, backendName);
    tf.registerKernel({ kernelName, backendName, kernelFunc });
  }
}
