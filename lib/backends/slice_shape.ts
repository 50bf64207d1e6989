/**
 * Slice and SplitV shared by the native and wasm backends' kernels (native/generic_kernels.ts,
 * wasm_kernels.ts): their parameters as tfjs parses them, and the strided copy of a slice one
 * contiguous last-axis run at a time. Each backend keeps its own memory handling (native: JS arrays
 * from its pool; wasm: views of the heap) and its fast paths.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { NamedAttrMap, TensorInfo } from "@tensorflow/tfjs-core";

/** The typed arrays a slice copies between. */
export type SliceValues = Float32Array | Int32Array | Uint8Array;

/** [begin, size] of a Slice kernel's attrs on x (negative and -1 sizes resolved, as tfjs does). */
export function sliceParams(x: TensorInfo, attrs: NamedAttrMap): [number[], number[]] {
  const [begin, sz] = tf.slice_util.parseSliceParams(
    x as tf.Tensor,
    attrs.begin as number | number[],
    attrs.size as number | number[],
  );
  return [begin, sz];
}

/**
 * SplitV as slices: for each piece of a SplitV kernel's attrs on x, `slice(begin, size)` (begin is
 * a fresh array each call), in order.
 */
export function splitSlices<T>(x: TensorInfo, attrs: NamedAttrMap, slice: (begin: number[], sz: number[]) => T): T[] {
  const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits as number[], axis);
  const begin = new Array(x.shape.length).fill(0);
  return sizes.map((s) => {
    const sz = [...x.shape];
    sz[axis] = s;
    const o = slice([...begin], sz);
    begin[axis] += s;
    return o;
  });
}

/**
 * Copies x[begin : begin+sz] (x row-major of `shape`, rank >= 1) into ov, row by row along the
 * last axis, walking the other axes like an odometer.
 */
export function copySliceRows(
  xv: SliceValues,
  ov: SliceValues,
  shape: readonly number[],
  slice: { begin: readonly number[]; sz: readonly number[] },
): void {
  const { begin, sz } = slice;
  const n = sz.reduce((a, b) => a * b, 1), rank = shape.length, strides = tf.util.computeStrides([...shape]);
  const last = sz[rank - 1], idx = new Array(Math.max(0, rank - 1)).fill(0);
  for (let o = 0; o < n; o += last) {
    let off = begin[rank - 1];
    for (let d = 0; d < rank - 1; d++) off += (begin[d] + idx[d]) * strides[d];
    ov.set(xv.subarray(off, off + last), o);
    for (let d = rank - 2; d >= 0; d--) {
      if (++idx[d] < sz[d]) break;
      idx[d] = 0;
    }
  }
}
