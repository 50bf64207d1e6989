/**
 * The wasm backend's SIMD kernels (kernels.c, compiled into kernels_wasm.ts by build.ts),
 * instantiated on tfjs-backend-wasm's own memory: they read and write tensors where they are,
 * addressed by {@link heapOffset}, without copies. lib/backends/wasm_fused.ts's FlFinedeep /
 * FlFinedeepGrad call them between XNNPACK matrix products.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { DataType, TensorInfo } from "@tensorflow/tfjs-core";
import { KERNELS_WASM_BASE64, KERNELS_WASM_SHARED_BASE64 } from "./kernels_wasm.ts";

/** The kernels' exports (pointers are byte offsets into the tfjs heap; 0 = none). See kernels.c. */
export interface SimdKernels {
  abi_version(): number;
  rmsnorm_fwd(x: number, g: number, y: number, rstd: number, N: number, D: number, eps: number): void;
  rmsnorm_bwd(dy: number, x: number, g: number, rstd: number, dx: number, dg: number, N: number, D: number): void;
  swiglu_fwd(ab: number, out: number, N: number, H: number): void;
  swiglu_bwd(dh: number, ab: number, dab: number, N: number, H: number): void;
  copy2d(src: number, lds: number, dst: number, ldd: number, rows: number, cols: number): void;
  transpose2d(src: number, dst: number, batch: number, rows: number, cols: number): void;
  gather_rows(x: number, ids: number, out: number, n: number, D: number): void;
  adamw(
    p: number,
    m: number,
    v: number,
    g: number,
    p1: number,
    m1: number,
    v1: number,
    n: number,
    b1: number,
    c1: number,
    b2: number,
    c2: number,
    sqrtBc2: number,
    eps: number,
    decay: number,
    step: number,
  ): void;
  xent_rows(logits: number, mx: number, se: number, N: number, V: number): void;
  xent_bwd(sc: number, logits: number, tgt: number, lse: number, dl: number, N: number, V: number): void;
  add(a: number, b: number, out: number, n: number): void;
  fd_u(w2: number, r: number, u: number, K: number, E: number, D: number): void;
  fd_u_bwd(du: number, w2: number, r: number, dw2: number, dr: number, K: number, E: number, D: number): void;
  swiglu_gate_fwd(ab: number, u: number, gated: number, g: number, p: number, N: number, K: number, E: number): void;
  swiglu_gate_bwd(
    dgated: number,
    ab: number,
    u: number,
    g: number,
    dab: number,
    du: number,
    s: number,
    N: number,
    K: number,
    E: number,
  ): void;
  fd_resid_fwd(
    a: number,
    y: number,
    stream: number,
    out: number,
    xm: number,
    rstd: number,
    N: number,
    D: number,
    eps: number,
  ): void;
  fd_resid_bwd(
    dxm: number,
    xm: number,
    rstd: number,
    dout: number,
    G: number,
    dy: number,
    N: number,
    D: number,
    first: number,
  ): void;
}

/** The parts of tfjs-backend-wasm's BackendWasm used here. */
export interface WasmHeapBackend {
  wasm: { asm?: { memory?: WebAssembly.Memory }; wasmMemory?: WebAssembly.Memory };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  disposeData(dataId: object): boolean;
}

/** ABI version kernels.c reports (bump both together). */
export const SIMD_ABI = 5;

/** Compiled modules: [0] imports a plain memory, [1] a shared one (tfjs's threaded build). */
const compiled: (WebAssembly.Module | null)[] = [null, null];
const instances = new WeakMap<WebAssembly.Memory, SimdKernels>();

/** The kernels on `backend`'s heap (instantiated once per heap). Throws if the heap is not reachable. */
export function simdKernels(backend: WasmHeapBackend): SimdKernels {
  // The single-threaded build exports its memory; the threaded one imports it (Module.wasmMemory).
  const memory = backend.wasm?.asm?.memory ?? backend.wasm?.wasmMemory;
  if (!(memory instanceof WebAssembly.Memory)) {
    throw new Error(
      "wasm SIMD kernels: tfjs-backend-wasm's memory (backend.wasm.asm.memory or .wasmMemory) is not reachable; " +
        "the pinned @tensorflow/tfjs-backend-wasm version exposes it",
    );
  }
  let k = instances.get(memory);
  if (!k) {
    const shared = typeof SharedArrayBuffer === "function" && memory.buffer instanceof SharedArrayBuffer ? 1 : 0;
    compiled[shared] ??= new WebAssembly.Module(
      Uint8Array.from(Buffer.from(shared ? KERNELS_WASM_SHARED_BASE64 : KERNELS_WASM_BASE64, "base64")),
    );
    k = new WebAssembly.Instance(compiled[shared]!, { env: { memory } }).exports as unknown as SimdKernels;
    if (k.abi_version() !== SIMD_ABI) {
      throw new Error(`wasm SIMD kernels: ABI ${k.abi_version()}, expected ${SIMD_ABI}`);
    }
    instances.set(memory, k);
  }
  return k;
}

/** Byte offset of a tensor's data in the wasm heap; its dtype must be one of `dtypes` (default float32). */
export function heapOffset(backend: WasmHeapBackend, t: TensorInfo, dtypes: readonly string[] = ["float32"]): number {
  const d = backend.dataIdMap.get(t.dataId);
  if (!d) throw new Error(`wasm SIMD kernels: tensor of shape [${t.shape}] is not on the wasm backend`);
  if (!dtypes.includes(t.dtype)) throw new Error(`wasm SIMD kernels: expected ${dtypes.join(" or ")}, got ${t.dtype}`);
  return d.memoryOffset;
}

/** What a kernel needs to run SIMD passes on the heap (see {@link simdHeap}). */
export interface SimdHeap {
  /** The kernels. */
  k: SimdKernels;
  /** Byte offset of a tensor (dtype one of `dtypes`, default float32). */
  at(t: TensorInfo, dtypes?: readonly string[]): number;
  /** A new output tensor on the heap (float32 unless given). */
  make(shape: number[], dtype?: DataType): TensorInfo;
  /** Frees a tensor made with `make` that is not returned (null: nothing). */
  free(t: TensorInfo | null): void;
}

/** The kernels and heap helpers for one kernel call on `backend`. */
export function simdHeap(backend: WasmHeapBackend): SimdHeap {
  return {
    k: simdKernels(backend),
    at: (t, dtypes) => heapOffset(backend, t, dtypes),
    make: (shape, dtype = "float32") => backend.makeOutput(shape, dtype),
    free: (t) => {
      if (t) backend.disposeData(t.dataId);
    },
  };
}
