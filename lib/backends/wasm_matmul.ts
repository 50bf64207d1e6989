/**
 * The wasm `BatchMatMul` replacement (see wasm_kernels.ts): flagged operands transposed explicitly in one
 * SIMD pass (wasm_simd/kernels.c `transpose2d`), then XNNPACK; batched products run as per-slice 2-D
 * XNNPACK calls on zero-copy views of the operands.
 *
 * @module
 */
import type { TensorInfo } from "@tensorflow/tfjs-core";
import { matmulShape } from "./matmul_shape.ts";
import { simdHeap } from "./wasm_simd/mod.ts";
import { type KernelArgs, stockKernel, type WasmBackend } from "./wasm_internals.ts";

type MatMulFn = (...args: unknown[]) => void;
const matMulFns = new WeakMap<object, MatMulFn>();

/** The raw C++ BatchMatMul entry point (same signature the stock kernel uses). */
function wasmMatMul(backend: WasmBackend): MatMulFn {
  let fn = matMulFns.get(backend);
  if (!fn) {
    fn = backend.wasm.cwrap("BatchMatMul", null, [
      "number",
      "array",
      "number",
      "number",
      "array",
      "number",
      "number",
      "number",
      "number",
    ]);
    matMulFns.set(backend, fn);
  }
  return fn;
}

/**
 * A float32 tensor with its last two axes swapped, in one SIMD pass (wasm_simd/kernels.c
 * transpose2d; tfjs-wasm's Transpose kernel is a scalar loop, ~8x slower).
 */
function transposeLast2(backend: WasmBackend, x: TensorInfo): TensorInfo {
  const r = x.shape.length, rows = x.shape[r - 2], cols = x.shape[r - 1], batch = x.shape.slice(0, -2);
  const { k, at, make } = simdHeap(backend), out = make([...batch, cols, rows]);
  k.transpose2d(at(x), at(out), batch.reduce((a, b) => a * b, 1), rows, cols);
  return out;
}

const shapeBytes = (s: number[]) => new Uint8Array(new Int32Array(s).buffer);

/**
 * out = op(a) @ op(b). Flagged operands are transposed explicitly (SIMD transpose2d), then every
 * product is an unflagged [1,m,k]x[1,k,n] call, which the C++ side sends to XNNPACK.
 */
export function batchMatMul(args: KernelArgs): TensorInfo {
  const { inputs: { a, b }, attrs, backend } = args;
  const g = matmulShape(a, b, attrs);
  // Shapes the per-slice path does not cover (general broadcasting, empty, non-float) keep the stock kernel.
  if (!g.supported) return stockKernel("BatchMatMul")(args as never) as TensorInfo;
  const { transposeA: tA, transposeB: tB, m, k, n, batchA, batchB, outShape } = g;
  const A = tA ? transposeLast2(backend, a) : a, B = tB ? transposeLast2(backend, b) : b;
  const release = () => {
    if (A !== a) backend.disposeData(A.dataId);
    if (B !== b) backend.disposeData(B.dataId);
  };
  try {
    if (batchB === 1) {
      // [.., m, k] x [k, n]: fold A's batch into its rows -> one XNNPACK call.
      const A2 = { dataId: A.dataId, dtype: A.dtype, shape: [1, batchA * m, k] };
      const B2 = { dataId: B.dataId, dtype: B.dtype, shape: [1, k, n] };
      const out = stockKernel("BatchMatMul")(
        { inputs: { a: A2, b: B2 }, attrs: { transposeA: false, transposeB: false }, backend } as never,
      ) as TensorInfo;
      return { dataId: out.dataId, dtype: out.dtype, shape: outShape };
    }
    // Batched: one 2-D XNNPACK product per slice, on temporary tensor ids that alias slices of
    // A, B and the output (wasm.tfjs.disposeData drops the id and its cached XNNPACK operator
    // without freeing memory).
    const batch = Math.max(batchA, batchB);
    const out = backend.makeOutput(outShape, "float32");
    const offA = backend.dataIdMap.get(A.dataId).memoryOffset;
    const offB = backend.dataIdMap.get(B.dataId).memoryOffset;
    const offO = backend.dataIdMap.get(out.dataId).memoryOffset;
    const fn = wasmMatMul(backend), t = backend.wasm.tfjs;
    const sa = shapeBytes([1, m, k]), sb = shapeBytes([1, k, n]);
    for (let i = 0; i < batch; i++) {
      const ia = backend.dataIdNextNumber++, ib = backend.dataIdNextNumber++, io = backend.dataIdNextNumber++;
      t.registerTensor(ia, m * k, offA + (batchA === 1 ? 0 : i * m * k * 4));
      t.registerTensor(ib, k * n, offB + i * k * n * 4);
      t.registerTensor(io, m * n, offO + i * m * n * 4);
      try {
        fn(ia, sa, 3, ib, sb, 3, false, false, io);
      } finally {
        t.disposeData(ia);
        t.disposeData(ib);
        t.disposeData(io);
      }
    }
    return out;
  } finally {
    release();
  }
}
