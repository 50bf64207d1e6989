/**
 * What the wasm kernel replacements (wasm_kernels.ts, wasm_matmul.ts) need of the pinned
 * `@tensorflow/tfjs-backend-wasm` 4.22: the internals of its backend object, checked by
 * {@link checkInternals}, and the stock kernels they fall back to.
 *
 * @module
 */
import type { DataType, KernelFunc, NamedAttrMap, TensorInfo } from "@tensorflow/tfjs-core";

/** The parts of tfjs-backend-wasm's `BackendWasm` these kernels use. */
export interface WasmBackend {
  wasm: {
    HEAPU8: Uint8Array;
    cwrap(name: string, ret: null, args: string[]): (...args: unknown[]) => void;
    tfjs: { registerTensor(id: number, size: number, offset: number): void; disposeData(id: number): void };
    asm?: { memory?: WebAssembly.Memory };
  };
  dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } };
  dataIdNextNumber: number;
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: object): boolean;
  incRef(dataId: object): void;
}

/** What tfjs passes a kernel. */
export interface KernelArgs {
  inputs: Record<string, TensorInfo>;
  attrs: NamedAttrMap;
  backend: WasmBackend;
}

/** The stock kernels replaced, by name (saved before the replacements are registered). */
export const stock = new Map<string, KernelFunc>();

/** The stock kernel `name` (saved by installWasmKernels). */
export function stockKernel(name: string): KernelFunc {
  const k = stock.get(name);
  if (!k) throw new Error(`internal: stock wasm kernel ${name} was not saved`);
  return k;
}

/** Throws a clear error unless `backend` has the internals the replacements use. */
export function checkInternals(backend: unknown): asserts backend is WasmBackend {
  const b = backend as Partial<WasmBackend> | null;
  const ok = b && b.wasm && typeof b.wasm.cwrap === "function" && b.wasm.tfjs &&
    typeof b.wasm.tfjs.registerTensor === "function" && typeof b.wasm.tfjs.disposeData === "function" &&
    b.dataIdMap && typeof b.dataIdNextNumber === "number" && typeof b.makeOutput === "function" &&
    typeof b.typedArrayFromHeap === "function" && typeof b.incRef === "function";
  if (!ok) {
    throw new Error(
      "The wasm kernel workarounds need internals of @tensorflow/tfjs-backend-wasm 4.22.0 that this " +
        "version does not have. Pin @tensorflow/tfjs-backend-wasm to 4.22.0 in deno.json.",
    );
  }
}
