/**
 * Kernel fixes for `@tensorflow/tfjs-backend-webgpu` 4.22.
 *
 * | kernel | stock problem | replacement |
 * |---|---|---|
 * | `AddN` | one shader binds every input; with more inputs than `maxStorageBuffersPerShaderStage - 1` (7 on llvmpipe) pipeline creation fails and the result is silently 0 or stale (e.g. a global gradient norm of 0) | sums in chunks that fit the limit |
 * | `BatchMatMul` | `transposeB` turns off the packed program's vec4 path (`MatMulPackedProgram.isVec4`): every backward product `dy · Wᵀ` ran 2-2.6x slower than the same product with Bᵀ stored (llvmpipe: [2048,128]·[384,128]ᵀ 185 ms vs 71 ms with the transpose; [2048,768]·[128,768]ᵀ 205 vs 101) | transposes B explicitly (one copy of B, usually a weight) when the product would otherwise take the vec4 path |
 *
 * @module
 */
import type { KernelFunc, NamedAttrMap, TensorInfo } from "@tensorflow/tfjs-core";
import { kernelOf, registerKernels } from "./register.ts";

/** Kernels replaced, by name (recorded in backend details). */
export const WEBGPU_KERNELS = ["AddN", "BatchMatMul"] as const;

interface WebgpuBackend {
  device?: { limits?: { maxStorageBuffersPerShaderStage?: number } };
  disposeData(dataId: object): boolean;
}

let stockAddN: KernelFunc | null = null;
let stockMatMul: KernelFunc | null = null;
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

/**
 * op(a) @ op(b) as the stock kernel, except that with `transposeB` and shapes that fit the packed
 * program's vec4 path (multiples of 4, as `MatMulPackedProgram.isVec4` checks) B is transposed first.
 */
function batchMatMul(args: { inputs: { a: TensorInfo; b: TensorInfo }; backend: WebgpuBackend; attrs: NamedAttrMap }) {
  const { inputs: { a, b }, backend, attrs } = args;
  const tA = attrs.transposeA as boolean, tB = attrs.transposeB as boolean;
  const ra = a.shape.length, rb = b.shape.length;
  const inner = tA ? a.shape[ra - 2] : a.shape[ra - 1], outerA = tA ? a.shape[ra - 1] : a.shape[ra - 2];
  const outerB = tB ? b.shape[rb - 2] : b.shape[rb - 1];
  const vec4 = outerB % 4 === 0 && (tA ? outerA % 4 === 0 : inner % 4 === 0);
  if (!tB || !vec4 || outerA < 4) return stockMatMul!(args as never) as TensorInfo;
  const perm = [...b.shape.keys()];
  [perm[rb - 2], perm[rb - 1]] = [rb - 1, rb - 2];
  const bT = kernelOf("Transpose", "webgpu")({ inputs: { x: b }, backend, attrs: { perm } } as never) as TensorInfo;
  const out = stockMatMul!({ inputs: { a, b: bT }, backend, attrs: { ...attrs, transposeB: false } } as never);
  backend.disposeData(bT.dataId);
  return out as TensorInfo;
}

/** Installs the webgpu fixes. Call after `tf.setBackend("webgpu")` resolved. Idempotent. */
export function installWebgpuKernels(): void {
  if (installed) return; // the stock kernels are read once: a second install would wrap our own
  stockAddN = kernelOf("AddN", "webgpu");
  stockMatMul = kernelOf("BatchMatMul", "webgpu");
  registerKernels("webgpu", {
    AddN: addN as unknown as KernelFunc,
    BatchMatMul: batchMatMul as unknown as KernelFunc,
  });
  installed = true;
}
