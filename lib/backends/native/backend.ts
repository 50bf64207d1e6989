/**
 * The `native` tfjs backend: tfjs-backend-cpu's backend class and kernels (tensor data in plain
 * JS TypedArrays), with the hot kernels replaced by native code called through Deno FFI on that
 * same memory (no copies):
 *
 * | kernel | implementation |
 * |---|---|
 * | `BatchMatMul` | system CBLAS `sgemm` (transpose flags passed to BLAS; batches as one call per slice, or folded into rows) |
 * | `FlRmsNorm`, `FlRmsNormGrad` | fused RMSNorm forward / backward (kernels.c) |
 * | `FlAttention`, `FlAttentionGrad` | fused causal attention: RoPE, scale, QKᵀ, causal softmax, PV, from the packed qkv projection |
 * | `FlSwiglu`, `FlSwigluGrad` | fused `silu(a) * b` |
 * | `FlExpertGate`, `FlExpertGateGrad` | fused output-guided sigmoid gates of fine-grained experts (Finedeep) |
 * | `FlCrossEntropy`, `FlCrossEntropyGrad` | fused mean cross-entropy from logits and int targets |
 * | `FlAdamW` | one AdamW update (new p, m, v) |
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
import type { DataType, KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from "@tensorflow/tfjs-core";
import type { Blas } from "./blas.ts";
import { matmulShape } from "../matmul_shape.ts";
import type { KernelSymbols } from "./kernels.ts";

/** Name the backend is registered under. */
export const NATIVE_BACKEND = "native";

/** The parts of tfjs-backend-cpu's MathBackendCPU we use. */
interface CpuBackend {
  data: { get(dataId: object): { values: unknown }; has(dataId: object): boolean };
  makeTensorInfo(shape: number[], dtype: DataType, values: Float32Array | Int32Array): TensorInfo;
  write(values: unknown, shape: number[], dtype: DataType): object;
  readSync(dataId: object): unknown;
  disposeData(dataId: object, force?: boolean): boolean;
  firstUse: boolean;
}

/**
 * Recycles the Float32Arrays our kernels allocate for outputs: a fresh multi-megabyte array costs
 * page faults and zeroing (~3 ms for 6 MB here against 0.3 ms to rewrite a warm one), and a
 * training step allocates the same sizes every step. An array returns to the pool when the last
 * tensor holding it is disposed; only arrays allocated here are pooled (user arrays passed to
 * tf.tensor() are stored by reference and never recycled), and reads (`data()`, `dataSync()`)
 * of pooled arrays return copies, so no recycled memory escapes. Pooled arrays hold stale values:
 * kernels must write every element (or use {@link BufferPool.zeros}).
 */
export class BufferPool {
  readonly #free = new Map<number, Float32Array[]>();
  readonly #owned = new WeakSet<Float32Array>();
  readonly #holders = new WeakMap<Float32Array, number>();
  #bytes = 0;
  /** Most bytes kept for reuse. */
  readonly maxBytes: number;
  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }
  /** An array of n floats with unspecified contents. */
  alloc(n: number): Float32Array {
    const a = this.#free.get(n)?.pop();
    if (a) {
      this.#bytes -= a.byteLength;
      return a;
    }
    const b = new Float32Array(n);
    this.#owned.add(b);
    return b;
  }
  /** An array of n zeros. */
  zeros(n: number): Float32Array {
    return this.alloc(n).fill(0);
  }
  /** Whether the array came from this pool. */
  owns(v: unknown): v is Float32Array {
    return v instanceof Float32Array && this.#owned.has(v);
  }
  /** A tensor started holding v. */
  hold(v: unknown): void {
    if (this.owns(v)) this.#holders.set(v, (this.#holders.get(v) ?? 0) + 1);
  }
  /** A tensor holding v was deleted; v is reused once no tensor holds it. */
  release(v: unknown): void {
    if (!this.owns(v)) return;
    const h = (this.#holders.get(v) ?? 1) - 1;
    if (h > 0) {
      this.#holders.set(v, h);
      return;
    }
    this.#holders.delete(v);
    if (this.#bytes + v.byteLength > this.maxBytes) return;
    const list = this.#free.get(v.length);
    if (list) list.push(v);
    else this.#free.set(v.length, [v]);
    this.#bytes += v.byteLength;
  }
  /** Bytes currently kept for reuse. */
  get pooledBytes(): number {
    return this.#bytes;
  }
}

/** The pool of the native backend (max 1 GiB kept). */
export const pool: BufferPool = new BufferPool(1 << 30);

interface Args {
  inputs: Record<string, TensorInfo>;
  attrs: NamedAttrMap;
  backend: CpuBackend;
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function f32(backend: CpuBackend, t: TensorInfo, what: string): Float32Array {
  const v = backend.data.get(t.dataId).values;
  if (!(v instanceof Float32Array)) throw new Error(`native ${what}: expected float32 data, got ${t.dtype}`);
  return v;
}

function i32(backend: CpuBackend, t: TensorInfo, what: string): Int32Array {
  const v = backend.data.get(t.dataId).values;
  if (!(v instanceof Int32Array)) throw new Error(`native ${what}: expected int32 data, got ${t.dtype}`);
  return v;
}

const out = (backend: CpuBackend, shape: number[], values: Float32Array) =>
  backend.makeTensorInfo(shape, "float32", values);

type Numeric = Float32Array | Int32Array | Uint8Array;

/** The values of a float32/int32/bool tensor, or null for other dtypes (string, complex). */
function numeric(backend: CpuBackend, t: TensorInfo): Numeric | null {
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array || v instanceof Int32Array || v instanceof Uint8Array ? v : null;
}

function alloc(like: Numeric, n: number): Numeric {
  return like instanceof Float32Array
    ? pool.alloc(n)
    : like instanceof Int32Array
    ? new Int32Array(n)
    : new Uint8Array(n);
}

/** Copies x[begin : begin+sz] (row-major) into a new array, one contiguous run at a time. */
function sliceValues(xv: Numeric, shape: readonly number[], begin: readonly number[], sz: readonly number[]): Numeric {
  const n = size(sz), ov = alloc(xv, n);
  if (n === 0) return ov;
  const rank = shape.length, strides = tf.util.computeStrides([...shape]);
  if (rank === 0) {
    ov[0] = xv[0];
    return ov;
  }
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
  return ov;
}

/** Kernels replaced or added on the native backend (recorded in backend details). */
export const NATIVE_KERNELS = [
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
  "FlRmsNorm",
  "FlRmsNormGrad",
  "FlAttention",
  "FlAttentionGrad",
  "FlExpertGate",
  "FlExpertGateGrad",
  "FlFinedeep",
  "FlFinedeepGrad",
  "FlSwiglu",
  "FlSwigluGrad",
  "FlCrossEntropy",
  "FlCrossEntropyGrad",
  "FlAdamW",
] as const;

/**
 * Rows per block of the fused Finedeep kernels (kernels.c fl_fd_fwd / fl_fd_bwd): a multiple of the
 * C kernels' 64-row chunks, small enough that a block's activations (~10 arrays of FD_ROWS x width
 * floats) stay in a core's L2 cache between the sub-layers' steps. The blocks are also the units
 * the threads share, and the sums over rows (weight gradients, du) run block by block in order, so
 * the bits do not depend on the thread count.
 */
export const FD_ROWS = 512;

/** Fields of kernels.c's `fl_fd_sub`, in order: one pointer each. */
const FD_SUB_FIELDS = [
  "w13",
  "w2",
  "r",
  "u",
  "ab",
  "gated",
  "g",
  "xm",
  "rstd",
  "dw13",
  "dw2",
  "dr",
  "du",
  "dup",
  "dab",
  "dy",
] as const;
type FdSub = Partial<Record<(typeof FD_SUB_FIELDS)[number], Float32Array | null>>;

/** An array of kernels.c `fl_fd_sub` structs (the arrays' addresses; 0 for a missing one). */
function fdSubs(subs: FdSub[]): BigUint64Array<ArrayBuffer> {
  const t = new BigUint64Array(subs.length * FD_SUB_FIELDS.length);
  subs.forEach((s, m) =>
    FD_SUB_FIELDS.forEach((f, i) => {
      const a = s[f];
      t[m * FD_SUB_FIELDS.length + i] = a ? BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(a))) : 0n;
    })
  );
  return t;
}

/** Throws when fl_fd_fwd / fl_fd_bwd returned -1 (no sgemm: registerNativeBackend sets it first). */
function fdCheck(rc: number, what: string): void {
  if (rc !== 0) throw new Error(`${what}: the kernels library has no sgemm (fl_set_sgemm failed)`);
}

/** Creates the kernel functions over a loaded BLAS and kernels library. */
function makeKernels(blas: Blas, k: KernelSymbols, cpuKernel: (name: string) => KernelFunc) {
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

  /** Element-wise a op b with broadcasting (op codes of kernels.c fl_binary). */
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
    const [begin, sz] = tf.slice_util.parseSliceParams(
      x as tf.Tensor,
      attrs.begin as number | number[],
      attrs.size as number | number[],
    );
    return backend.makeTensorInfo(sz, x.dtype, sliceValues(xv, x.shape, begin, sz) as Float32Array);
  }

  function splitV(args: Args): TensorInfo[] {
    const { inputs: { x }, attrs, backend } = args;
    const xv = numeric(backend, x);
    if (!xv) return cpuKernel("SplitV")(args as never) as TensorInfo[];
    const axis = tf.util.parseAxisParam(attrs.axis as number, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, attrs.numOrSizeSplits as number[], axis);
    const begin = new Array(x.shape.length).fill(0);
    return sizes.map((s) => {
      const sz = [...x.shape];
      sz[axis] = s;
      const o = backend.makeTensorInfo(sz, x.dtype, sliceValues(xv, x.shape, begin, sz) as Float32Array);
      begin[axis] += s;
      return o;
    });
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

  /** Inputs x (and gain g, optional: without it no gain). */
  function rmsnorm(args: Args): TensorInfo[] {
    const { inputs: { x, g }, attrs, backend } = args;
    const D = x.shape[x.shape.length - 1], N = size(x.shape) / D;
    const y = pool.alloc(N * D), rstd = pool.alloc(N);
    const gv = g ? f32(backend, g, "FlRmsNorm") : null;
    k.fl_rmsnorm_fwd(f32(backend, x, "FlRmsNorm"), gv, y, rstd, N, D, attrs.eps as number);
    return [out(backend, [...x.shape], y), out(backend, [N], rstd)];
  }

  /** Returns [dx, dg] with a gain, [dx] without. */
  function rmsnormGrad(args: Args): TensorInfo[] {
    const { inputs: { dy, x, g, rstd }, backend } = args;
    const D = x.shape[x.shape.length - 1], N = size(x.shape) / D;
    const dx = pool.alloc(N * D), dg = g ? pool.alloc(D) : null;
    const w = "FlRmsNormGrad";
    const gv = g ? f32(backend, g, w) : null;
    k.fl_rmsnorm_bwd(f32(backend, dy, w), f32(backend, x, w), gv, f32(backend, rstd, w), dx, dg, N, D);
    return dg ? [out(backend, [...x.shape], dx), out(backend, [D], dg)] : [out(backend, [...x.shape], dx)];
  }

  /** prod [N, K*E], u [K*E] -> [gated [N, K*E], g [N, K]]. */
  function expertGate(args: Args): TensorInfo[] {
    const { inputs: { prod, u }, attrs, backend } = args;
    const K = attrs.k as number, N = prod.shape[0], E = prod.shape[1] / K;
    const gated = pool.alloc(N * K * E), g = pool.alloc(N * K);
    k.fl_expert_gate_fwd(f32(backend, prod, "FlExpertGate"), f32(backend, u, "FlExpertGate"), gated, g, N, K, E);
    return [out(backend, [N, K * E], gated), out(backend, [N, K], g)];
  }

  /** -> [dprod, du]. */
  function expertGateGrad(args: Args): TensorInfo[] {
    const { inputs: { dy, prod, u, g }, attrs, backend } = args;
    const K = attrs.k as number, N = prod.shape[0], E = prod.shape[1] / K, w = "FlExpertGateGrad";
    const dprod = pool.alloc(N * K * E), du = pool.alloc(K * E);
    k.fl_expert_gate_bwd(
      f32(backend, dy, w),
      f32(backend, prod, w),
      f32(backend, u, w),
      f32(backend, g, w),
      dprod,
      du,
      N,
      K,
      E,
    );
    return [out(backend, [N, K * E], dprod), out(backend, [...u.shape], du)];
  }

  /**
   * The default Finedeep FFN block (lib/backends/fused.ts finedeepBlock): inputs x [N, D] (the layer's
   * normed input), h [N, D] (the residual stream; only for m > 1) and per sub-layer i w13_i [D, 2H],
   * w2_i [H, D], r_i [K, D]; attrs m, k, eps. Returns [Σ y_i, then what the backward reads: ab_i, gated_i,
   * g_i, u_i for every i, xm_i and rstd_i for i >= 1].
   *
   * One C call (kernels.c fl_fd_fwd): the rows go {@link FD_ROWS} at a time through all M sub-layers
   * (one residual/norm pass, two sgemms and one SwiGLU + gate pass each), so a row block's
   * activations stay in the core's cache between the steps (measured: this, not the arithmetic, is
   * what the extra steps cost), and with more threads each thread takes whole row blocks in one
   * parallel region (every region wakes the sleeping OpenMP threads; one per step measured ~100 us).
   */
  function finedeep(args: Args): TensorInfo[] {
    const { inputs, attrs, backend } = args, w = "FlFinedeep";
    const M = attrs.m as number, K = attrs.k as number, eps = attrs.eps as number;
    const [N, D] = inputs.x.shape, H = inputs.w2_0.shape[0], E = H / K;
    const v = (name: string) => f32(backend, inputs[name], w);
    const x = v("x"), h = M > 1 ? v("h") : null, ysum = pool.alloc(N * D);
    const subs = Array.from({ length: M }, (_, m) => ({
      w13: v(`w13_${m}`),
      w2: v(`w2_${m}`),
      r: v(`r_${m}`),
      u: pool.alloc(H),
      ab: pool.alloc(N * 2 * H),
      gated: pool.alloc(N * H),
      g: pool.alloc(N * K),
      xm: m > 0 ? pool.alloc(N * D) : x,
      rstd: m > 0 ? pool.alloc(N) : null,
    }));
    const stream = M > 1 ? pool.alloc(N * D) : null, y = M > 2 ? pool.alloc(N * D) : null;
    fdCheck(k.fl_fd_fwd(fdSubs(subs), h, ysum, stream, y, N, D, K, E, M, FD_ROWS, eps), w);
    if (stream) pool.release(stream);
    if (y) pool.release(y);
    const rest = subs.slice(1);
    return [
      out(backend, [N, D], ysum),
      ...subs.map((s) => out(backend, [N, 2 * H], s.ab)),
      ...subs.map((s) => out(backend, [N, H], s.gated)),
      ...subs.map((s) => out(backend, [N, K], s.g)),
      ...subs.map((s) => out(backend, [H], s.u)),
      ...rest.map((s) => out(backend, [N, D], s.xm)),
      ...rest.map((s) => out(backend, [N], s.rstd!)),
    ];
  }

  /**
   * Backward of {@link finedeep}: inputs dy, x, h (m > 1), the weights and the forward's saved
   * tensors under the same names (ab_i, gated_i, g_i, u_i, xm_i, rstd_i). Returns the gradients of
   * the forward's inputs in order: dx, dh (m > 1), then dw13_i, dw2_i, dr_i per sub-layer. One C call
   * (kernels.c fl_fd_bwd): the per-row steps in the forward's row blocks, then the 2M weight-gradient
   * products as parallel tasks, each summed over the row blocks in order (sgemm beta 1).
   */
  function finedeepGrad(args: Args): TensorInfo[] {
    const { inputs, attrs, backend } = args, w = "FlFinedeepGrad";
    const M = attrs.m as number, K = attrs.k as number;
    const [N, D] = inputs.x.shape, H = inputs.w2_0.shape[0], E = H / K, blocks = Math.ceil(N / FD_ROWS);
    const v = (name: string) => f32(backend, inputs[name], w);
    const subs = Array.from({ length: M }, (_, m) => ({
      w13: v(`w13_${m}`),
      w2: v(`w2_${m}`),
      r: v(`r_${m}`),
      u: v(`u_${m}`),
      ab: v(`ab_${m}`),
      gated: v(`gated_${m}`),
      g: v(`g_${m}`),
      xm: m > 0 ? v(`xm_${m}`) : v("x"),
      rstd: m > 0 ? v(`rstd_${m}`) : null,
      dw13: pool.alloc(D * 2 * H),
      dw2: pool.alloc(H * D),
      dr: pool.alloc(K * D),
      du: pool.alloc(H),
      dup: pool.alloc(blocks * H),
      dab: pool.alloc(N * 2 * H),
      dy: m < M - 1 ? pool.alloc(N * D) : null,
    }));
    const dx = pool.alloc(N * D), dh = M > 1 ? pool.alloc(N * D) : null;
    const dgated = pool.alloc(N * H), dxm = M > 1 ? pool.alloc(N * D) : null;
    fdCheck(k.fl_fd_bwd(fdSubs(subs), v("dy"), dx, dh, dgated, dxm, N, D, K, E, M, FD_ROWS), w);
    for (const a of [dgated, dxm, ...subs.flatMap((s) => [s.du, s.dup, s.dab, s.dy])]) if (a) pool.release(a);
    return [
      out(backend, [N, D], dx),
      ...(dh ? [out(backend, [N, D], dh)] : []),
      ...subs.flatMap((s) => [
        out(backend, [D, 2 * H], s.dw13),
        out(backend, [H, D], s.dw2),
        out(backend, [K, D], s.dr),
      ]),
    ];
  }

  function attention(args: Args): TensorInfo[] {
    const { inputs: { qkv, cos, sin }, attrs, backend } = args;
    const B = attrs.batch as number, T = attrs.seqLen as number, H = attrs.heads as number;
    const D = qkv.shape[1] / 3, hd = D / H;
    const o = pool.alloc(B * T * D), P = pool.alloc(B * H * T * T);
    const w = "FlAttention";
    k.fl_attention_fwd(
      f32(backend, qkv, w),
      f32(backend, cos, w),
      f32(backend, sin, w),
      o,
      P,
      B,
      T,
      H,
      hd,
      attrs.scale as number,
    );
    return [out(backend, [B * T, D], o), out(backend, [B * H, T, T], P)];
  }

  function attentionGrad(args: Args): TensorInfo {
    const { inputs: { dy, qkv, P, cos, sin }, attrs, backend } = args;
    const B = attrs.batch as number, T = attrs.seqLen as number, H = attrs.heads as number;
    const D = qkv.shape[1] / 3, hd = D / H;
    const dqkv = pool.alloc(B * T * 3 * D);
    const w = "FlAttentionGrad";
    k.fl_attention_bwd(
      f32(backend, dy, w),
      f32(backend, qkv, w),
      f32(backend, P, w),
      f32(backend, cos, w),
      f32(backend, sin, w),
      dqkv,
      B,
      T,
      H,
      hd,
      attrs.scale as number,
    );
    return out(backend, [B * T, 3 * D], dqkv);
  }

  function swiglu(args: Args): TensorInfo {
    const { inputs: { ab }, backend } = args;
    const N = ab.shape[0], Hf = ab.shape[1] / 2, h = pool.alloc(N * Hf);
    k.fl_swiglu_fwd(f32(backend, ab, "FlSwiglu"), h, N, Hf);
    return out(backend, [N, Hf], h);
  }

  function swigluGrad(args: Args): TensorInfo {
    const { inputs: { dy, ab }, backend } = args;
    const N = ab.shape[0], Hf = ab.shape[1] / 2, dab = pool.alloc(N * 2 * Hf);
    k.fl_swiglu_bwd(f32(backend, dy, "FlSwigluGrad"), f32(backend, ab, "FlSwigluGrad"), dab, N, Hf);
    return out(backend, [N, 2 * Hf], dab);
  }

  function crossEntropy(args: Args): TensorInfo[] {
    const { inputs: { logits, targets }, backend } = args;
    const [N, V] = logits.shape, lse = pool.alloc(N), loss = pool.alloc(1);
    const w = "FlCrossEntropy";
    k.fl_xent_fwd(f32(backend, logits, w), i32(backend, targets, w), lse, loss, N, V);
    return [out(backend, [], loss), out(backend, [N], lse)];
  }

  function crossEntropyGrad(args: Args): TensorInfo {
    const { inputs: { dy, logits, targets, lse }, backend } = args;
    const [N, V] = logits.shape, dl = pool.alloc(N * V);
    const w = "FlCrossEntropyGrad";
    k.fl_xent_bwd(
      f32(backend, dy, w),
      f32(backend, logits, w),
      i32(backend, targets, w),
      f32(backend, lse, w),
      dl,
      N,
      V,
    );
    return out(backend, [N, V], dl);
  }

  function adamw(args: Args): TensorInfo[] {
    const { inputs: { p, m, v, g }, attrs, backend } = args;
    const n = size(p.shape), p1 = pool.alloc(n), m1 = pool.alloc(n), v1 = pool.alloc(n);
    const w = "FlAdamW", a = attrs as Record<string, number>;
    k.fl_adamw(
      f32(backend, p, w),
      f32(backend, m, w),
      f32(backend, v, w),
      f32(backend, g, w),
      p1,
      m1,
      v1,
      n,
      a.b1,
      a.c1,
      a.b2,
      a.c2,
      a.sqrtBc2,
      a.eps,
      a.decay,
      a.step,
    );
    const s = [...p.shape];
    return [out(backend, s, p1), out(backend, s, m1), out(backend, s, v1)];
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
    FlRmsNorm: rmsnorm,
    FlRmsNormGrad: rmsnormGrad,
    FlAttention: attention,
    FlAttentionGrad: attentionGrad,
    FlExpertGate: expertGate,
    FlExpertGateGrad: expertGateGrad,
    FlFinedeep: finedeep,
    FlFinedeepGrad: finedeepGrad,
    FlSwiglu: swiglu,
    FlSwigluGrad: swigluGrad,
    FlCrossEntropy: crossEntropy,
    FlCrossEntropyGrad: crossEntropyGrad,
    FlAdamW: adamw,
  } satisfies Record<(typeof NATIVE_KERNELS)[number], (a: Args) => TensorInfo | TensorInfo[]>;
}

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
  // The Finedeep block's C code calls the same sgemm (kernels.c fl_set_sgemm).
  if (kernels.fl_set_sgemm(new TextEncoder().encode(blas.path + "\0")) !== 1) {
    throw new Error(`native backend: the kernels library could not find cblas_sgemm in ${blas.path}`);
  }
  const mine = makeKernels(blas, kernels, cpuKernel);
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
