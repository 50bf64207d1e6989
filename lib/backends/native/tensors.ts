/**
 * What the native backend's kernels share: tfjs-backend-cpu's backend as they see it, the pool that
 * recycles their output arrays, and reading and allocating tensor values.
 *
 * @module
 */
import type { DataType, NamedAttrMap, TensorInfo } from "@tensorflow/tfjs-core";
import { copySliceRows, type SliceValues } from "../slice_shape.ts";

/** The parts of tfjs-backend-cpu's MathBackendCPU we use. */
export interface CpuBackend {
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

/** What a kernel function gets. */
export interface Args {
  inputs: Record<string, TensorInfo>;
  attrs: NamedAttrMap;
  backend: CpuBackend;
}

/** Elements of a shape. */
export const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** The float32 values of a tensor (an error naming the kernel otherwise). */
export function f32(backend: CpuBackend, t: TensorInfo, what: string): Float32Array {
  const v = backend.data.get(t.dataId).values;
  if (!(v instanceof Float32Array)) throw new Error(`native ${what}: expected float32 data, got ${t.dtype}`);
  return v;
}

/** The float32 values of several tensors, in order (see {@link f32}): one argument list for a kernel call. */
export function f32s<const T extends readonly TensorInfo[]>(
  backend: CpuBackend,
  ts: T,
  what: string,
): { [K in keyof T]: Float32Array } {
  return ts.map((t) => f32(backend, t, what)) as { [K in keyof T]: Float32Array };
}

/** The int32 values of a tensor (an error naming the kernel otherwise). */
export function i32(backend: CpuBackend, t: TensorInfo, what: string): Int32Array {
  const v = backend.data.get(t.dataId).values;
  if (!(v instanceof Int32Array)) throw new Error(`native ${what}: expected int32 data, got ${t.dtype}`);
  return v;
}

/** A float32 output tensor over `values`. */
export const out = (backend: CpuBackend, shape: number[], values: Float32Array): TensorInfo =>
  backend.makeTensorInfo(shape, "float32", values);

/** Values of a numeric tensor. */
export type Numeric = SliceValues;

/** The values of a float32/int32/bool tensor, or null for other dtypes (string, complex). */
export function numeric(backend: CpuBackend, t: TensorInfo): Numeric | null {
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array || v instanceof Int32Array || v instanceof Uint8Array ? v : null;
}

/** A new array of n elements of `like`'s type (float32 from the pool). */
export function alloc(like: Numeric, n: number): Numeric {
  return like instanceof Float32Array
    ? pool.alloc(n)
    : like instanceof Int32Array
    ? new Int32Array(n)
    : new Uint8Array(n);
}

/** Copies x[begin : begin+sz] (row-major) into a new array, one contiguous run at a time. */
export function sliceValues(
  xv: Numeric,
  shape: readonly number[],
  begin: readonly number[],
  sz: readonly number[],
): Numeric {
  const n = size(sz), ov = alloc(xv, n);
  if (n === 0) return ov;
  if (shape.length === 0) ov[0] = xv[0];
  else copySliceRows(xv, ov, shape, { begin, sz });
  return ov;
}
