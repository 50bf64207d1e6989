/**
 * The native backend's generic kernel fixes: tfjs kernels replaced by native code or faster JS (see the
 * table in backend.ts): matmul on CBLAS, elementwise and reductions in C, layout kernels as row copies.
 * Model-agnostic; the model-specific fused ops are in fused_kernels.ts.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { KernelFunc, TensorInfo } from "@tensorflow/tfjs-core";
import type { Blas } from "./blas.ts";
import type { KernelSymbols } from "./kernels.ts";
import { matmulShape } from "../matmul_shape.ts";
import { sliceParams, splitSlices } from "../slice_shape.ts";
import { alloc, type Args, f32, numeric, out, pool, size, sliceValues } from "./tensors.ts";

/** Kernels this module replaces (names as tfjs registers them). */
export const GENERIC_KERNELS = [
  "BatchMatMul",
  "Add",
  "Sub",
  "Multiply",
  "RealDiv",
  "AddN",
  "Softmax",
  "PadV2",
  "Sum",
  "Mean",
  "Square",
  "Neg",
  "Sigmoid",
  "Rsqrt",
  "Sqrt",
  "Transpose",
  "Slice",
  "SplitV",
  "Concat",
  "TopK",
  "GatherV2",
  "UnsortedSegmentSum",
] as const;

/** Creates the generic kernel functions over a loaded BLAS and kernels library. */
export function genericKernels(blas: Blas, k: KernelSymbols, cpuKernel: (name: string) => KernelFunc) {
  /** out = op(a) @ op(b); batched over equal leading dims or a batch-1 side. */
  function batchMatMul(args: Args): TensorInfo {
    const { inputs: { a, b }, attrs, backend } = args;
    const g = matmulShape(a, b, attrs);
    if (!g.supported) return cpuKernel("BatchMatMul")(args as never) as TensorInfo;
    const { transposeA: tA, transposeB: tB, m, k: kk, n, batchA, batchB } = g;
    const av = f32(backend, a, "BatchMatMul"), bv = f32(backend, b, "BatchMatMul");
    const batch = Math.max(batchA, batchB);
    const res = pool.alloc(batch * m * n);
    const lda = tA ? m : kk, ldb = tB ? kk : n;
    if (batchB === 1 && !tA) {
      // [.., m, k] x [k, n]: A's batch folds into its rows -> one sgemm.
      blas.sgemm(false, tB, batchA * m, n, kk, av, lda, bv, ldb, res, n);
    } else {
      const sa = m * kk, sb = kk * n, so = m * n;
      for (let i = 0; i < batch; i++) {
        const ai = batchA === 1 ? av : av.subarray(i * sa, (i + 1) * sa);
        const bi = batchB === 1 ? bv : bv.subarray(i * sb, (i + 1) * sb);
        blas.sgemm(tA, tB, m, n, kk, ai, lda, bi, ldb, res.subarray(i * so, (i + 1) * so), n);
      }
    }
    return out(backend, g.outShape, res);
  }

  /** Element-wise a op b with broadcasting (op codes of kernels/elementwise.c fl_binary). */
  const binary = (name: string, op: number) => (args: Args): TensorInfo => {
    const { inputs: { a, b }, backend } = args;
    if (a.dtype !== "float32" || b.dtype !== "float32") return cpuKernel(name)(args as never) as TensorInfo;
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape), r = shape.length;
    if (r > 16) return cpuKernel(name)(args as never) as TensorInfo;
    const strides = (s: readonly number[]) => {
      const padded = [...new Array(r - s.length).fill(1), ...s], st = new Int32Array(r);
      for (let d = r - 1, acc = 1; d >= 0; d--) {
        st[d] = padded[d] === 1 ? 0 : acc;
        acc *= padded[d];
      }
      return st;
    };
    const res = pool.alloc(size(shape));
    k.fl_binary(
      op,
      f32(backend, a, name),
      f32(backend, b, name),
      res,
      r,
      Int32Array.from(shape),
      strides(a.shape),
      strides(b.shape),
    );
    return out(backend, shape, res);
  };

  /** Sum / Mean over a contiguous block of axes (else tfjs-backend-cpu's kernel). */
  const reduce = (name: string, mean: boolean) => (args: Args): TensorInfo => {
    const { inputs: { x }, attrs, backend } = args;
    const axes = [...new Set(tf.util.parseAxisParam(attrs.axis as number | number[], x.shape))].sort((p, q) => p - q);
    const n = size(x.shape);
    if (x.dtype !== "float32" || !axes.length || n === 0 || axes.some((ax, i) => ax !== axes[0] + i)) {
      return cpuKernel(name)(args as never) as TensorInfo;
    }
    const a0 = axes[0], a1 = axes[axes.length - 1] + 1;
    const outer = size(x.shape.slice(0, a0)), R = size(x.shape.slice(a0, a1)), inner = size(x.shape.slice(a1));
    const shape = attrs.keepDims
      ? x.shape.map((d, i) => (i >= a0 && i < a1 ? 1 : d))
      : x.shape.filter((_, i) => i < a0 || i >= a1);
    const res = pool.alloc(outer * inner);
    k.fl_reduce_sum(f32(backend, x, name), res, outer, R, inner, mean ? R : 0);
    return out(backend, shape, res);
  };

  const unary = (name: string, op: number) => (args: Args): TensorInfo => {
    const { inputs: { x }, backend } = args;
    if (x.dtype !== "float32") return cpuKernel(name)(args as never) as TensorInfo;
    const n = size(x.shape), res = pool.alloc(n);
    k.fl_unary(op, f32(backend, x, name), res, n);
    return out(backend, [...x.shape], res);
  };

  /** Softmax over the last axis (else tfjs-backend-cpu's kernel). */
  function softmax(args: Args): TensorInfo {
    const { inputs: { logits }, attrs, backend } = args;
    const r = logits.shape.length, dim = attrs.dim as number;
    if (logits.dtype !== "float32" || r === 0 || (dim !== -1 && dim !== r - 1) || size(logits.shape) === 0) {
      return cpuKernel("Softmax")(args as never) as TensorInfo;
    }
    const n = logits.shape[r - 1], rows = size(logits.shape) / n, res = pool.alloc(rows * n);
    k.fl_softmax(f32(backend, logits, "Softmax"), res, rows, n);
    return out(backend, [...logits.shape], res);
  }

  /** Constant padding: the output filled with the constant, x copied in one contiguous run at a time. */
  function padV2(args: Args): TensorInfo {
    const { inputs: { x }, attrs, backend } = args;
    const xv = numeric(backend, x), pads = attrs.paddings as [number, number][];
    if (!xv || x.shape.length === 0) return cpuKernel("PadV2")(args as never) as TensorInfo;
    const rank = x.shape.length, outShape = x.shape.map((d, i) => pads[i][0] + d + pads[i][1]);
    const ov = alloc(xv, size(outShape)).fill(attrs.constantValue as number);
    const n = size(x.shape);
    if (n > 0) {
      const oStr = tf.util.computeStrides(outShape), last = x.shape[rank - 1], idx = new Array(rank - 1).fill(0);
      for (let i = 0; i < n; i += last) {
        let off = pads[rank - 1][0];
        for (let d = 0; d < rank - 1; d++) off += (idx[d] + pads[d][0]) * oStr[d];
        ov.set(xv.subarray(i, i + last), off);
        for (let d = rank - 2; d >= 0; d--) {
          if (++idx[d] < x.shape[d]) break;
          idx[d] = 0;
        }
      }
    }
    return backend.makeTensorInfo(outShape, x.dtype, ov as Float32Array);
  }

  function addN(args: Args): TensorInfo {
    const { inputs, backend } = args;
    const ts = Object.keys(inputs).map((key) => inputs[key]);
    const s0 = ts[0].shape;
    if (ts.some((t) => t.dtype !== "float32" || t.shape.length !== s0.length || t.shape.some((d, i) => d !== s0[i]))) {
      return cpuKernel("AddN")(args as never) as TensorInfo;
    }
    const n = size(s0), res = pool.alloc(n);
    if (ts.length === 1) res.set(f32(backend, ts[0], "AddN"));
    else {
      // Left to right, as the cpu kernel: ((t0 + t1) + t2) + ...
      k.fl_add(f32(backend, ts[0], "AddN"), f32(backend, ts[1], "AddN"), res, n);
      for (let i = 2; i < ts.length; i++) k.fl_add(res, f32(backend, ts[i], "AddN"), res, n);
    }
    return out(backend, [...s0], res);
  }

  function transpose(args: Args): TensorInfo {
    const { inputs: { x }, attrs, backend } = args;
    const xv = numeric(backend, x);
    if (!xv) return cpuKernel("Transpose")(args as never) as TensorInfo;
    const perm = attrs.perm as number[], xs = x.shape, rank = xs.length;
    const outShape = perm.map((p) => xs[p]), n = size(xs);
    if (perm.every((p, i) => p === i)) {
      const copy = alloc(xv, n);
      copy.set(xv);
      return backend.makeTensorInfo(outShape, x.dtype, copy as Float32Array);
    }
    const ov = alloc(xv, n), xStr = tf.util.computeStrides([...xs]);
    const inStr = perm.map((p) => (p === rank - 1 ? 1 : xStr[p])); // input stride of each output axis
    const last = outShape[rank - 1], lastStr = inStr[rank - 1], idx = new Array(rank - 1).fill(0);
    for (let o = 0; o < n; o += last) {
      let off = 0;
      for (let d = 0; d < rank - 1; d++) off += idx[d] * inStr[d];
      if (lastStr === 1) ov.set(xv.subarray(off, off + last), o);
      else for (let j = 0; j < last; j++) ov[o + j] = xv[off + j * lastStr];
      for (let d = rank - 2; d >= 0; d--) {
        if (++idx[d] < outShape[d]) break;
        idx[d] = 0;
      }
    }
    return backend.makeTensorInfo(outShape, x.dtype, ov as Float32Array);
  }

  function slice(args: Args): TensorInfo {
    const { inputs: { x }, attrs, backend } = args;
    const xv = numeric(backend, x);
    if (!xv) return cpuKernel("Slice")(args as never) as TensorInfo;
    const [begin, sz] = sliceParams(x, attrs);
    return backend.makeTensorInfo(sz, x.dtype, sliceValues(xv, x.shape, begin, sz) as Float32Array);
  }

  function splitV(args: Args): TensorInfo[] {
    const { inputs: { x }, attrs, backend } = args;
    const xv = numeric(backend, x);
    if (!xv) return cpuKernel("SplitV")(args as never) as TensorInfo[];
    return splitSlices(
      x,
      attrs,
      (begin, sz) => backend.makeTensorInfo(sz, x.dtype, sliceValues(xv, x.shape, begin, sz) as Float32Array),
    );
  }

  /** Concat of same-dtype numeric inputs: per outer index, one block copy per input (cpu: a JS loop per element). */
  function concat(args: Args): TensorInfo {
    const { inputs, attrs, backend } = args;
    const ts = Object.keys(inputs).map((key) => inputs[key]);
    const vals = ts.map((t) => numeric(backend, t));
    if (vals.some((v) => !v) || ts.some((t) => t.dtype !== ts[0].dtype)) {
      return cpuKernel("Concat")(args as never) as TensorInfo;
    }
    const axis = tf.util.parseAxisParam(attrs.axis as number, ts[0].shape)[0];
    const outShape = tf.backend_util.computeOutShape(ts.map((t) => t.shape), axis);
    const outer = size(outShape.slice(0, axis)), ov = alloc(vals[0]!, size(outShape));
    const blocks = ts.map((t) => size(t.shape.slice(axis))), row = blocks.reduce((a, b) => a + b, 0);
    for (let o = 0; o < outer; o++) {
      let at = o * row;
      for (let i = 0; i < ts.length; i++) {
        ov.set(vals[i]!.subarray(o * blocks[i], (o + 1) * blocks[i]), at);
        at += blocks[i];
      }
    }
    return backend.makeTensorInfo(outShape, ts[0].dtype, ov as Float32Array);
  }

  /**
   * TopK (sorted) over the last axis of finite float32 values: one insertion pass per row, keeping the k best
   * by (value descending, index ascending), which is exactly cpu's order (select + sort by that comparator).
   * Rows of k >= 8 or with non-finite values go to the cpu kernel.
   */
  function topK(args: Args): TensorInfo[] {
    const { inputs: { x }, attrs, backend } = args;
    const xv = numeric(backend, x), k = attrs.k as number, last = x.shape[x.shape.length - 1];
    const finite = (v: Float32Array) => {
      for (let i = 0; i < v.length; i++) if (v[i] - v[i] !== 0) return false; // NaN or ±Infinity
      return true;
    };
    if (!(xv instanceof Float32Array) || attrs.sorted === false || k > 8 || k > last || !finite(xv)) {
      return cpuKernel("TopK")(args as never) as unknown as TensorInfo[];
    }
    const rows = last === 0 ? 0 : xv.length / last, vo = new Float32Array(rows * k), io = new Int32Array(rows * k);
    const bv = new Float64Array(k), bi = new Int32Array(k);
    for (let r = 0; r < rows; r++) {
      const off = r * last;
      let n = 0;
      for (let j = 0; j < last; j++) {
        const v = xv[off + j];
        if (n === k && !(v > bv[k - 1])) continue;
        let p = n < k ? n++ : k - 1; // the slot to fill, then move up past worse entries
        while (p > 0 && v > bv[p - 1]) {
          bv[p] = bv[p - 1];
          bi[p] = bi[p - 1];
          p--;
        }
        bv[p] = v;
        bi[p] = j;
      }
      for (let i = 0; i < k; i++) {
        vo[r * k + i] = bv[i];
        io[r * k + i] = bi[i];
      }
    }
    const shape = [...x.shape.slice(0, -1), k];
    return [backend.makeTensorInfo(shape, "float32", vo), backend.makeTensorInfo(shape, "int32", io)];
  }

  function gatherV2(args: Args): TensorInfo {
    const { inputs: { x, indices }, attrs, backend } = args;
    const xv = numeric(backend, x), iv = backend.data.get(indices.dataId).values;
    const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
    if (!xv || !(iv instanceof Int32Array) || axis !== 0 || ((attrs.batchDims as number) ?? 0) !== 0) {
      return cpuKernel("GatherV2")(args as never) as TensorInfo;
    }
    const rows = x.shape[0], inner = size(x.shape.slice(1)), ov = alloc(xv, iv.length * inner);
    for (let i = 0; i < iv.length; i++) {
      const r = iv[i];
      if (!(r >= 0 && r < rows)) throw new Error(`GatherV2: the index value ${r} is not in [0, ${rows - 1}]`);
      ov.set(xv.subarray(r * inner, (r + 1) * inner), i * inner);
    }
    return backend.makeTensorInfo([...indices.shape, ...x.shape.slice(1)], x.dtype, ov as Float32Array);
  }

  function unsortedSegmentSum(args: Args): TensorInfo {
    const { inputs: { x, segmentIds }, attrs, backend } = args;
    const ids = backend.data.get(segmentIds.dataId).values;
    if (x.dtype !== "float32" || !(ids instanceof Int32Array)) {
      return cpuKernel("UnsortedSegmentSum")(args as never) as TensorInfo;
    }
    const numSegments = attrs.numSegments as number, idsRank = segmentIds.shape.length;
    if (segmentIds.shape.some((d, i) => d !== x.shape[i])) {
      throw new Error(
        `UnsortedSegmentSum: segmentIds shape [${segmentIds.shape}] must be a prefix of x shape [${x.shape}]`,
      );
    }
    const innerShape = x.shape.slice(idsRank), inner = size(innerShape);
    const xv = f32(backend, x, "UnsortedSegmentSum"), ov = pool.zeros(numSegments * inner);
    for (let i = 0; i < ids.length; i++) { // in index order: deterministic
      const s = ids[i];
      if (s < 0 || s >= numSegments) continue; // TF semantics: out-of-range ids are dropped
      const ob = s * inner, xb = i * inner;
      for (let j = 0; j < inner; j++) ov[ob + j] += xv[xb + j];
    }
    return out(backend, [numSegments, ...innerShape], ov);
  }

  return {
    BatchMatMul: batchMatMul,
    Add: binary("Add", 0),
    Sub: binary("Sub", 1),
    Multiply: binary("Multiply", 2),
    RealDiv: binary("RealDiv", 3),
    AddN: addN,
    Softmax: softmax,
    PadV2: padV2,
    Sum: reduce("Sum", false),
    Mean: reduce("Mean", true),
    Square: unary("Square", 0),
    Neg: unary("Neg", 1),
    Sigmoid: unary("Sigmoid", 2),
    Rsqrt: unary("Rsqrt", 3),
    Sqrt: unary("Sqrt", 4),
    Transpose: transpose,
    Slice: slice,
    SplitV: splitV,
    Concat: concat,
    TopK: topK,
    GatherV2: gatherV2,
    UnsortedSegmentSum: unsortedSegmentSum,
  } satisfies Record<(typeof GENERIC_KERNELS)[number], (a: Args) => TensorInfo | TensorInfo[]>;
}
