/**
 * Kernel replacements for `@tensorflow/tfjs-backend-wasm` 4.22 that make training usable
 * (see shared/research/compute.md §3). They change speed, not results, except that more
 * matmuls go through XNNPACK (float rounding differs from the naive loop by ~1e-7 relative).
 *
 * | kernel | stock problem | replacement |
 * |---|---|---|
 * | `BatchMatMul` | XNNPACK only for batch 1 without transpose flags; everything else (every matmul gradient, the tied head, attention) runs a naive loop at ~2 GFLOP/s | flagged operands transposed explicitly (one SIMD pass, wasm_simd/kernels.c `transpose2d`), then XNNPACK; batched products run as per-slice 2-D XNNPACK calls on zero-copy views of the operands |
 * | `Slice`, `SplitV`, `Unpack` | copy the whole input out of the wasm heap for every slice | read through a zero-copy heap view; a cut along one axis (SplitV's case) is one strided copy in wasm SIMD (wasm_simd/kernels.c `copy2d`) |
 * | `Concat` | one typed-array `set` per row and input (e.g. 2048 x 3 calls for a qkv-sized concat) | one strided SIMD copy per input (4-byte dtypes; others: stock) |
 * | `Cast` | to bool truncates to a byte: 0.5 -> false, -2 -> 254 (silently) | `x != 0` (other casts: stock) |
 * | `GatherV2` | ~10 ms for the reference model's embedding lookup (2048 rows of 128) | axis 0, 4-byte dtypes: one SIMD row copy per id (others: stock) |
 * | `UnsortedSegmentSum` | missing, so `tf.gather` (the embedding) has no gradient | sequential JS loop (deterministic order) |
 * | `OneHot` | writes int32 bits whatever the dtype: `oneHot(.., "float32")` silently gives 1.4e-45 for 1 | JS loop honouring the dtype |
 * | `Identity` | copies the tensor, and tfjs clones every tensor a gradient saves with it (337 copies per reference training step, 33 ms of ~950 measured) | shares the data under a reference count, as tfjs-backend-cpu's Identity and wasm's own Reshape do (tensors are immutable) |
 *
 * These touch internals of the pinned wasm backend (`dataIdMap`, `dataIdNextNumber`, `wasm.cwrap`,
 * `wasm.tfjs.registerTensor/disposeData`); {@link installWasmKernels} checks they exist and throws
 * a clear error otherwise.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { DataType, KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import { simdHeap } from "./wasm_simd/mod.ts";
import { registerKernels } from "./register.ts";
import { checkInternals, type KernelArgs, stock, stockKernel, type WasmBackend } from "./wasm_internals.ts";
import { batchMatMul } from "./wasm_matmul.ts";
import { copySliceRows, sliceParams, splitSlices } from "./slice_shape.ts";

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
/** dtypes whose elements the wasm SIMD copy moves as 4-byte words. */
const FOUR_BYTE: readonly string[] = ["float32", "int32"];

/** Kernels replaced or added, by name (recorded in backend details). */
export const WASM_KERNELS = [
  "BatchMatMul",
  "Slice",
  "SplitV",
  "Unpack",
  "UnsortedSegmentSum",
  "OneHot",
  "Identity",
  "Concat",
  "Cast",
  "GatherV2",
] as const;

let installed = false;

// ---- Slice family ---------------------------------------------------------------------------

/** Copies x[begin : begin+sz] into a new wasm tensor through heap views (no copy of all of x). */
function sliceInto(backend: WasmBackend, x: TensorInfo, begin: number[], sz: number[]): TensorInfo {
  const out = backend.makeOutput(sz, x.dtype); // allocate first: malloc may grow (and detach) the heap
  const n = size(sz);
  if (n === 0) return out;
  const xv = backend.typedArrayFromHeap(x), ov = backend.typedArrayFromHeap(out);
  const strides = tf.util.computeStrides(x.shape);
  if (tf.slice_util.isSliceContinous(x.shape, begin, sz)) {
    const off = tf.slice_util.computeFlatOffset(begin, strides);
    ov.set(xv.subarray(off, off + n));
    return out;
  }
  // Cut along one axis only (SplitV's case): rows x cols strided copy in wasm SIMD.
  const cut = x.shape.map((d, i) => sz[i] !== d).reduce((a, c) => a + (c ? 1 : 0), 0);
  if (cut === 1 && FOUR_BYTE.includes(x.dtype)) {
    const a = x.shape.findIndex((d, i) => sz[i] !== d), inner = size(x.shape.slice(a + 1));
    const { k, at } = simdHeap(backend);
    k.copy2d(
      at(x, FOUR_BYTE) + 4 * begin[a] * inner,
      x.shape[a] * inner,
      at(out, FOUR_BYTE),
      sz[a] * inner,
      size(x.shape.slice(0, a)),
      sz[a] * inner,
    );
    return out;
  }
  copySliceRows(xv, ov, x.shape, { begin, sz });
  return out;
}

function slice(args: KernelArgs): TensorInfo {
  const { inputs: { x }, attrs, backend } = args;
  if (x.dtype === "string") return stockKernel("Slice")(args as never) as TensorInfo;
  const [begin, sz] = sliceParams(x, attrs);
  return sliceInto(backend, x, begin, sz);
}

function splitV(args: KernelArgs): TensorInfo[] {
  const { inputs: { x }, attrs, backend } = args;
  if (x.dtype === "string") return stockKernel("SplitV")(args as never) as TensorInfo[];
  return splitSlices(x, attrs, (begin, sz) => sliceInto(backend, x, begin, sz));
}

function unpack(args: KernelArgs): TensorInfo[] {
  const { inputs: { value }, attrs, backend } = args;
  if (value.dtype === "string") return stockKernel("Unpack")(args as never) as TensorInfo[];
  const rank = value.shape.length;
  const axis = (attrs.axis as number) < 0 ? (attrs.axis as number) + rank : attrs.axis as number;
  const outShape = value.shape.filter((_, i) => i !== axis);
  const begin = new Array(rank).fill(0), sz = [...value.shape];
  sz[axis] = 1;
  const outs: TensorInfo[] = [];
  for (let i = 0; i < value.shape[axis]; i++) {
    begin[axis] = i;
    const o = sliceInto(backend, value, [...begin], sz);
    outs.push({ dataId: o.dataId, dtype: o.dtype, shape: outShape });
  }
  return outs;
}

// ---- Concat -------------------------------------------------------------------------------------

/** Concat of 4-byte tensors: per input one rows x cols strided copy (wasm SIMD); the rest: the stock kernel. */
function concat(args: KernelArgs): TensorInfo {
  const { inputs, backend } = args, list = Object.values(inputs);
  const axis = tf.util.parseAxisParam(args.attrs.axis as number, list[0].shape)[0];
  const parts = list.filter((t) => size(t.shape) > 0);
  if (parts.length < 2 || !parts.every((t) => t.dtype === parts[0].dtype && FOUR_BYTE.includes(t.dtype))) {
    return stockKernel("Concat")(args as never) as TensorInfo;
  }
  tf.backend_util.assertParamsConsistent(list.map((t) => t.shape), axis);
  const out = backend.makeOutput(tf.backend_util.computeOutShape(list.map((t) => t.shape), axis), parts[0].dtype);
  const rows = size(parts[0].shape.slice(0, axis)), inner = parts.map((t) => size(t.shape.slice(axis)));
  const total = inner.reduce((a, b) => a + b, 0), { k, at } = simdHeap(backend);
  let col = 0;
  for (const [i, t] of parts.entries()) {
    k.copy2d(at(t, FOUR_BYTE), inner[i], at(out, FOUR_BYTE) + 4 * col, total, rows, inner[i]);
    col += inner[i];
  }
  return out;
}

// ---- GatherV2 -----------------------------------------------------------------------------------

/**
 * Rows of a 4-byte tensor by int32 ids along axis 0 (the embedding lookup): one SIMD row copy each.
 * The stock kernel took ~10 ms per step for the reference model's 2048 x 128 lookup. Other gathers: stock.
 */
function gatherV2(args: KernelArgs): TensorInfo {
  const { inputs: { x, indices }, attrs, backend } = args;
  const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
  if (
    axis !== 0 || (attrs.batchDims as number ?? 0) !== 0 || !FOUR_BYTE.includes(x.dtype) || indices.dtype !== "int32"
  ) {
    return stockKernel("GatherV2")(args as never) as TensorInfo;
  }
  const ids = backend.typedArrayFromHeap(indices) as Int32Array, rows = x.shape[0];
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < rows)) {
      throw new Error(`GatherV2: the index value ${ids[i]} is not in [0, ${rows - 1}]`); // the stock message
    }
  }
  const D = size(x.shape.slice(1)), out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
  const { k, at } = simdHeap(backend);
  k.gather_rows(at(x, FOUR_BYTE), at(indices, ["int32"]), at(out, FOUR_BYTE), ids.length, D);
  return out;
}

// ---- Cast ---------------------------------------------------------------------------------------

/** Cast to bool: x != 0 (the stock kernel truncates to a byte: 0.5 -> 0, -2 -> 254); other casts: stock. */
function cast(args: KernelArgs): TensorInfo {
  const { inputs: { x }, attrs, backend } = args;
  if (attrs.dtype !== "bool" || x.dtype === "bool" || x.dtype === "string" || x.dtype === "complex64") {
    return stockKernel("Cast")(args as never) as TensorInfo;
  }
  const out = backend.makeOutput([...x.shape], "bool");
  const xv = backend.typedArrayFromHeap(x), ov = backend.typedArrayFromHeap(out);
  for (let i = 0; i < xv.length; i++) ov[i] = xv[i] !== 0 ? 1 : 0;
  return out;
}

// ---- UnsortedSegmentSum ----------------------------------------------------------------------

function unsortedSegmentSum(args: KernelArgs): TensorInfo {
  const { inputs: { x, segmentIds }, attrs, backend } = args;
  const numSegments = attrs.numSegments as number;
  const idsRank = segmentIds.shape.length;
  for (let d = 0; d < idsRank; d++) {
    if (x.shape[d] !== segmentIds.shape[d]) {
      throw new Error(
        `UnsortedSegmentSum: segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`,
      );
    }
  }
  const innerShape = x.shape.slice(idsRank), inner = size(innerShape);
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  const ov = backend.typedArrayFromHeap(out), xv = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  ov.fill(0); // malloc'd memory is not zeroed
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (s < 0 || s >= numSegments) continue; // TF semantics: out-of-range ids are dropped
    const ob = s * inner, xb = i * inner;
    for (let j = 0; j < inner; j++) ov[ob + j] += xv[xb + j];
  }
  return out;
}

// ---- OneHot -----------------------------------------------------------------------------------

function oneHot(args: KernelArgs): TensorInfo {
  const { inputs: { indices }, attrs, backend } = args;
  const depth = attrs.depth as number, on = attrs.onValue as number, off = attrs.offValue as number;
  const out = backend.makeOutput([...indices.shape, depth], attrs.dtype as DataType);
  const ov = backend.typedArrayFromHeap(out), ids = backend.typedArrayFromHeap(indices);
  ov.fill(off);
  for (let i = 0; i < ids.length; i++) {
    const c = ids[i];
    if (c >= 0 && c < depth) ov[i * depth + c] = on; // out-of-range indices give an all-off row, as in TF
  }
  return out;
}

// ---- installation -----------------------------------------------------------------------------

const replacements: Record<(typeof WASM_KERNELS)[number], KernelFunc> = {
  BatchMatMul: batchMatMul as unknown as KernelFunc,
  Slice: slice as unknown as KernelFunc,
  SplitV: splitV as unknown as KernelFunc,
  Unpack: unpack as unknown as KernelFunc,
  UnsortedSegmentSum: unsortedSegmentSum as unknown as KernelFunc,
  OneHot: oneHot as unknown as KernelFunc,
  Identity: identity as unknown as KernelFunc,
  Concat: concat as unknown as KernelFunc,
  Cast: cast as unknown as KernelFunc,
  GatherV2: gatherV2 as unknown as KernelFunc,
};

/** x -> the same data under one more reference (no copy); string tensors keep the stock kernel. */
function identity(args: KernelArgs): TensorInfo {
  const { inputs: { x }, backend } = args;
  if (x.dtype === "string") return stock.get("Identity")!(args as never) as TensorInfo;
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

/**
 * Replaces/adds the wasm kernels listed in {@link WASM_KERNELS}. Call after `tf.setBackend("wasm")`
 * resolved (the stock kernels' setup must have run). Idempotent.
 */
export function installWasmKernels(): void {
  if (installed) return;
  checkInternals(tf.findBackend("wasm"));
  for (const name of WASM_KERNELS) {
    const k = tf.getKernel(name, "wasm");
    if (k) stock.set(name, k.kernelFunc);
    else if (name !== "UnsortedSegmentSum") throw new Error(`wasm backend has no ${name} kernel to replace`);
  }
  registerKernels("wasm", replacements);
  installed = true;
}

/** Whether {@link installWasmKernels} has run in this process. */
export function wasmKernelsInstalled(): boolean {
  return installed;
}
