/**
 * The routed mixture of sparse training (`train_compute = sparse`) as ONE tfjs op with its own gradient, on
 * the native backend: the layout of lib/models/moe.ts `maskedMixture` (E SwiGLU experts of width W side by
 * side in `w13` `[D, 2·E·W]` and `w2` `[E·W, O]`), cut into S output slices (slice s mixes experts
 * `s·E/S..(s+1)·E/S` into output columns `s·O..(s+1)·O`: FineRMoE's sparse concat; S = 1 for top-k MoE).
 *
 * Forward, per slice and per expert e with rows (coef != 0, in token order): gather the rows, `a = xs W_g,e`
 * and `b = xs W_u,e` (sgemm on the expert's columns of w13, read in place), `h = silu(a) ⊙ b`, `o = h W_2,e`
 * (sgemm on the expert's rows of w2), then `y[t, slice] += coef[t, e] · o`. Backward: the weighted output
 * gives `dcoef` (a float32-rounded product per element, summed in double per row) and `do = dy · coef`;
 * `dh = do W_2,eᵀ`, `dW_2,e = hᵀ do`, the SwiGLU backward element-wise, `dW_g,e = xsᵀ da` and
 * `dW_u,e = xsᵀ db` written straight into the expert's columns of dW13, `dxs = db W_u,eᵀ + da W_g,eᵀ`, and
 * dx the scatter-add of dxs into the tokens. No tfjs ops per expert (the tfjs form, `sparseMixture` +
 * `expertRunner`, runs ~15 ops per expert forward and ~30 in its gradient, each with its JS overhead).
 *
 * BIT-IDENTICAL to the tfjs form on the native backend (tested: the output and every gradient), because it
 * performs the same float32 operations in the same order: the same sgemm calls (m, n, k and transpose flags;
 * OpenBLAS results do not depend on the leading dimensions, tested), the element-wise steps through the C
 * functions the backend's kernels run (kernels/*.c: `fl_reduce_sum` of its Sum, `fl_binary`/`fl_mul`: one
 * float32 operation per element, as its Multiply/Add/Sub) or C loops doing those operations per element in
 * the same order (kernels/moe.c: the SwiGLU steps with the Sigmoid kernel's double-precision sigmoid and
 * tfjs's Sigmoid gradient `dy·(y·(1−y))`, the row copies of GatherV2, the scatters added to zeros in row
 * order as UnsortedSegmentSum), and the gradient of x passed per slice (x is an input once per non-empty slice, last
 * slice first), so the tape adds them to x's other gradients in the order it adds the tfjs form's per-slice
 * gathers (likewise coef). Keep it in step with `sparseMixture` / `expertRunner` (lib/models/moe.ts).
 *
 * Only on the native backend; {@link sparseTrainActive} says whether callers should use it
 * (`FINELAB_SPARSE_TRAIN=tfjs` turns it off, for comparisons).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { loadKernels } from "../backends/native/mod.ts";
import { type CpuBackend, f32, pool } from "../backends/native/tensors.ts";

let override: boolean | null = null;
let fromEnv: boolean | null = null;

/**
 * Whether sparse training should use {@link sparseMixtureTrain}: the native backend is active and neither
 * {@link setSparseTrainOp} nor `FINELAB_SPARSE_TRAIN=tfjs` turned it off.
 */
export function sparseTrainActive(): boolean {
  if (tf.getBackend() !== "native") return false;
  if (override !== null) return override;
  if (fromEnv === null) {
    let v: string | undefined;
    try {
      v = Deno.env.get("FINELAB_SPARSE_TRAIN");
    } catch {
      v = undefined; // no env permission: the default
    }
    fromEnv = v !== "tfjs";
  }
  return fromEnv;
}

/** Turns the fused op on or off for this process (`null`: back to the default / environment). */
export function setSparseTrainOp(on: boolean | null): void {
  override = on;
}

/** The rest of {@link sparseMixtureTrain}'s inputs. */
export interface SparseTrainOptions {
  /** The CPU copy of coef (`dataSync()`), which decides the rows of each expert. */
  values: ArrayLike<number>;
  /** `[D, 2·E·W]`: expert e's gate columns at `e·W`, up columns at `E·W + e·W`. */
  w13: tf.Tensor;
  /** `[E·W, O]`: expert e's rows at `e·W`. */
  w2: tf.Tensor;
  /** S output slices (FineRMoE's G_O); the expert count must be a multiple. Default 1. */
  slices?: number;
}

/** One non-empty output slice of a call: its rows (expert after expert) and what the forward kept. */
interface SliceState {
  s: number;
  /** Token of each row. */
  rows: Int32Array;
  /** Flat coef index `t·E + e` of each row, and that weight. */
  flat: Int32Array;
  c: Float32Array;
  /** Experts with rows, their first row and row count. */
  experts: number[];
  starts: number[];
  counts: number[];
  /** First row of the slice in the op's row arrays (all slices' rows, slice after slice). */
  r0: number;
}

/** A tensor's float32 values (no copy on the native backend); read only. */
function vals(t: tf.Tensor): Float32Array {
  return f32(tf.backend() as unknown as CpuBackend, t, "sparseMixtureTrain");
}

/**
 * Work arrays of the backward pass reused across calls (grown when too small; every element used is
 * written before it is read).
 */
const work: Float32Array[] = [];
function scratch(i: number, n: number): Float32Array {
  if (!work[i] || work[i].length < n) work[i] = new Float32Array(Math.max(n, 1));
  return work[i];
}

type K = ReturnType<typeof loadKernels>["k"];

/**
 * One pass of the op as records run in ONE parallel region (kernels/moe_prog.h fl_moe_prog): with passive
 * OpenMP waiting every region start wakes the other threads (~60 us on the 2-vCPU VM), more than most of the
 * pass's steps take. {@link Prog.barrier} ends a step: the records of a step are independent (disjoint outputs)
 * and their units are shared among the threads (sgemm calls largest first, each single-threaded; OpenBLAS never
 * splits k, so each call gives the bits it gives alone; tested against the tfjs form for 1 and 2 threads).
 */
class Prog {
  #ints = new Int32Array(24 * 64);
  #n = 0;
  #wall = false;
  #arrays: (Float32Array | Int32Array)[] = [];
  #index = new Map<Float32Array | Int32Array, number>();
  #slot(a: Float32Array | Int32Array): number {
    let i = this.#index.get(a);
    if (i === undefined) {
      this.#index.set(a, i = this.#arrays.length);
      this.#arrays.push(a);
    }
    return i;
  }
  /** Appends a record: kind, its integers and operands (array, offset in elements). */
  op(kind: number, ints: number[], refs: [Float32Array | Int32Array, number][]): void {
    if ((this.#n + 1) * 24 > this.#ints.length) {
      const more = new Int32Array(this.#ints.length * 2);
      more.set(this.#ints);
      this.#ints = more;
    }
    const q = this.#ints.subarray(24 * this.#n, 24 * ++this.#n).fill(0);
    q[0] = kind;
    q[1] = this.#wall ? 1 : 0;
    this.#wall = false;
    q.set(ints, 2);
    refs.forEach(([a, off], i) => {
      q[12 + 2 * i] = this.#slot(a);
      q[13 + 2 * i] = off;
    });
  }
  /** `c[cOff..] = op(a[aOff..]) @ op(b[bOff..])`, row-major, m x n over k, with leading dimensions. */
  gemm(t: { tA: boolean; tB: boolean; m: number; n: number; k: number }, a: Arg, b: Arg, c: Arg): void {
    const ints = [t.tA ? 1 : 0, t.tB ? 1 : 0, t.m, t.n, t.k, a[2], b[2], c[2]];
    this.op(0, ints, [[a[0], a[1]], [b[0], b[1]], [c[0], c[1]]]);
  }
  /** The next record starts a new step (after every record before it has finished). */
  barrier(): void {
    if (this.#n) this.#wall = true;
  }
  /** Runs the records and empties the program. */
  run(k: K): void {
    if (!this.#n) return;
    const table = BigUint64Array.from(this.#arrays, (a) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(a))));
    const rc = k.fl_moe_prog(this.#ints, table, this.#n);
    if (rc !== 0) throw new Error(`sparseMixtureTrain: fl_moe_prog failed (${rc}: -1 no sgemm, -2 out of memory)`);
    this.#n = 0;
    this.#wall = false;
    this.#arrays = [];
    this.#index.clear();
  }
}
/** An operand: array, offset of its first element, leading dimension. */
type Arg = [Float32Array, number, number];
/** fl_moe_prog record kinds (kernels/moe_prog.h). */
const GATHER = 1, SWIGLU_FWD = 2, SWIGLU_BWD = 3, SCATTER_WEIGHTED = 4, WEIGHTED_BWD = 5, SCATTER_SUM = 6;
const NN = { tA: false, tB: false }, NT = { tA: false, tB: true }, TN = { tA: true, tB: false };

/**
 * dW13 `[D, 2·E·W]` and dW2 `[E·W, O]` with zeros only where no sgemm writes: the experts without rows (the
 * sgemms of the others, beta 0, overwrite their columns / rows whole).
 */
function weightGrads(dims: { D: number; E: number; W: number; O: number }, active: Set<number>) {
  const { D, E, W, O } = dims, H = E * W, dw13 = pool.alloc(D * 2 * H), dw2 = pool.alloc(H * O);
  for (let e = 0; e < E; e++) {
    if (active.has(e)) continue;
    for (let d = 0; d < D; d++) {
      dw13.fill(0, d * 2 * H + e * W, d * 2 * H + (e + 1) * W);
      dw13.fill(0, d * 2 * H + H + e * W, d * 2 * H + H + (e + 1) * W);
    }
    dw2.fill(0, e * W * O, (e + 1) * W * O);
  }
  return { dw13, dw2 };
}

/**
 * `y [N, S·O]`: slice s is `Σ_{e in slice s} coef[:, e] · expert_e(x)`, each expert run on its rows only
 * (`opts.values` is the CPU copy of coef), with the gradient of the tfjs form (see the module doc). Needs the
 * native backend.
 */
export function sparseMixtureTrain(
  x: tf.Tensor2D,
  coef: tf.Tensor2D,
  opts: SparseTrainOptions,
): tf.Tensor2D {
  const { values, ...w } = opts;
  const [N, D] = x.shape, E = coef.shape[1], S = opts.slices ?? 1;
  const H = w.w2.shape[0] as number, O = w.w2.shape[1] as number, W = H / E, per = E / S;
  if (values.length !== N * E) throw new Error(`sparseMixtureTrain: ${values.length} values for coef [${N}, ${E}]`);
  if (!Number.isInteger(W) || !Number.isInteger(per) || w.w13.size !== D * 2 * H) {
    throw new Error(
      `sparseMixtureTrain: w13 [${w.w13.shape}], w2 [${w.w2.shape}] do not fit ${E} experts in ${S} slices of x [${N}, ${D}]`,
    );
  }
  const coefs = values instanceof Float32Array ? values : Float32Array.from(values); // read only
  const slices = routeRows(coefs, { N, E, S });
  if (!slices.length) return tf.zeros([N, S * O]);
  // One set of row arrays for all slices (slice after slice, from row st.r0): every step runs once over all of
  // them (one gather, one sgemm batch per product, one element-wise call), not once per slice.
  const Rt = slices.reduce((n, st) => n + st.rows.length, 0), allRows = new Int32Array(Rt);
  for (const st of slices) allRows.set(st.rows, st.r0);
  const buf = {
    xs: pool.alloc(Rt * D),
    a: pool.alloc(Rt * W),
    b: pool.alloc(Rt * W),
    sig: pool.alloc(Rt * W),
    h: pool.alloc(Rt * W),
    o: pool.alloc(Rt * O),
  };
  const k = loadKernels().k, gb = new Prog(), SO = S * O, H2 = 2 * H;
  // Inputs: x and coef once per non-empty slice, last slice first (the tape's order for the tfjs form's
  // per-slice gathers), then w13, w2.
  const order = [...slices].reverse();
  let done = false;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xv = vals(args[0] as tf.Tensor), w13 = vals(args[2 * order.length] as tf.Tensor);
    const w2 = vals(args[2 * order.length + 1] as tf.Tensor);
    const y = pool.zeros(N * SO), { xs, a, b, sig, h, o } = buf;
    // One pass (kernels/moe_prog.h): gather the rows (GatherV2's row copies); gate and up sgemms; SwiGLU
    // (sig = sigmoid(a), h = (a·sig)·b); down sgemms; y[t, slice] += coef · o (the weighting Multiply, then
    // UnsortedSegmentSum into zeros in row order).
    gb.op(GATHER, [Rt, D, 0, D], [[xv, 0], [allRows, 0], [xs, 0]]);
    gb.barrier();
    for (const st of slices) {
      for (let q = 0; q < st.experts.length; q++) {
        const e = st.experts[q], r0 = st.r0 + st.starts[q], n = st.counts[q], xe: Arg = [xs, r0 * D, D];
        gb.gemm({ ...NN, m: n, n: W, k: D }, xe, [w13, e * W, H2], [a, r0 * W, W]);
        gb.gemm({ ...NN, m: n, n: W, k: D }, xe, [w13, H + e * W, H2], [b, r0 * W, W]);
      }
    }
    gb.barrier();
    gb.op(SWIGLU_FWD, [Rt * W], [[a, 0], [b, 0], [sig, 0], [h, 0]]);
    gb.barrier();
    for (const st of slices) {
      for (let q = 0; q < st.experts.length; q++) {
        const e = st.experts[q], r0 = st.r0 + st.starts[q], n = st.counts[q];
        gb.gemm({ ...NN, m: n, n: O, k: W }, [h, r0 * W, W], [w2, e * W * O, O], [o, r0 * O, O]);
      }
    }
    gb.barrier();
    for (const st of slices) {
      gb.op(SCATTER_WEIGHTED, [st.rows.length, SO, st.s * O, O], [[y, 0], [o, st.r0 * O], [st.c, 0], [st.rows, 0]]);
    }
    gb.run(k);
    return {
      value: tf.tensor2d(y, [N, SO]),
      gradFunc: (dy: tf.Tensor) => {
        if (done) throw new Error("sparseMixtureTrain: the gradient of one forward pass was asked twice");
        done = true;
        const dyv = vals(dy), active = new Set(slices.flatMap((st) => st.experts));
        const { dw13, dw2 } = weightGrads({ D, E, W, O }, active);
        const RW = Rt * W, dO = scratch(1, Rt * O), dw = scratch(3, Rt), dh = scratch(4, RW), da = scratch(7, RW);
        const db = scratch(8, RW), dXb = scratch(9, Rt * D), dXa = scratch(10, Rt * D);
        const dx = order.map(() => pool.zeros(N * D));
        // One pass: the weighting Multiply's gradient (dO = dy·coef; dcoef = Sum over the row of dy·o, the Sum
        // kernel); dh and dW2 sgemms; the SwiGLU backward as the tape runs it (ds = dh·b, db = dh·silu(a), then
        // mul(a, sig): da = ds·sig, dsig = ds·a; Sigmoid's gradient dsig·(sig·(1 − sig)); their sum); the dxs and
        // dW13 sgemms; dxs = db-path + da-path (the tape's add) scattered into the tokens (the gather's gradient).
        for (const st of order) {
          const R = st.rows.length, r0 = st.r0;
          gb.op(WEIGHTED_BWD, [R, SO, st.s * O, O], [[dyv, 0], [st.rows, 0], [st.c, 0], [o, r0 * O], [dO, r0 * O], [
            dw,
            r0,
          ]]);
        }
        gb.barrier();
        for (const st of slices) {
          for (let q = 0; q < st.experts.length; q++) {
            const e = st.experts[q], r0 = st.r0 + st.starts[q], n = st.counts[q], dOe: Arg = [dO, r0 * O, O];
            gb.gemm({ ...NT, m: n, n: W, k: O }, dOe, [w2, e * W * O, O], [dh, r0 * W, W]);
            gb.gemm({ ...TN, m: W, n: O, k: n }, [h, r0 * W, W], dOe, [dw2, e * W * O, O]);
          }
        }
        gb.barrier();
        gb.op(SWIGLU_BWD, [RW], [[a, 0], [b, 0], [sig, 0], [dh, 0], [da, 0], [db, 0]]);
        gb.barrier();
        for (const st of slices) {
          for (let q = 0; q < st.experts.length; q++) {
            const e = st.experts[q], r0 = st.r0 + st.starts[q], n = st.counts[q];
            const xe: Arg = [xs, r0 * D, D], dbe: Arg = [db, r0 * W, W], dae: Arg = [da, r0 * W, W];
            gb.gemm({ ...NT, m: n, n: D, k: W }, dbe, [w13, H + e * W, H2], [dXb, r0 * D, D]);
            gb.gemm({ ...TN, m: D, n: W, k: n }, xe, dbe, [dw13, H + e * W, H2]);
            gb.gemm({ ...NT, m: n, n: D, k: W }, dae, [w13, e * W, H2], [dXa, r0 * D, D]);
            gb.gemm({ ...TN, m: D, n: W, k: n }, xe, dae, [dw13, e * W, H2]);
          }
        }
        gb.barrier();
        order.forEach((st, i) => {
          const r0 = st.r0;
          gb.op(SCATTER_SUM, [st.rows.length, D, 0, D], [[dx[i], 0], [dXb, r0 * D], [dXa, r0 * D], [st.rows, 0]]);
        });
        gb.run(k);
        const dcs = order.map((st) => {
          const dc = pool.zeros(N * E); // dcoef scattered into zeros (the gather's gradient)
          for (let i = 0; i < st.rows.length; i++) dc[st.flat[i]] += dw[st.r0 + i];
          return tf.tensor2d(dc, [N, E]);
        });
        const dxs = dx.map((v) => tf.tensor2d(v, [N, D]));
        for (const v of Object.values(buf)) pool.release(v);
        return [...dxs, ...dcs, tf.tensor(dw13, w.w13.shape), tf.tensor(dw2, w.w2.shape)];
      },
    };
  });
  return f(...order.map(() => x), ...order.map(() => coef), w.w13, w.w2) as tf.Tensor2D;
}

/** The non-empty slices' rows (coef != 0), expert after expert, tokens in order (sparseMixture's gather order). */
function routeRows(coefs: Float32Array, dims: { N: number; E: number; S: number }): SliceState[] {
  const { N, E, S } = dims, per = E / S, counts = new Int32Array(E);
  for (let t = 0; t < N; t++) for (let e = 0; e < E; e++) if (coefs[t * E + e] !== 0) counts[e]++;
  const out: SliceState[] = [];
  let r0 = 0;
  for (let s = 0; s < S; s++) {
    let R = 0;
    const experts: number[] = [], starts: number[] = [], sizes: number[] = [];
    for (let e = s * per; e < (s + 1) * per; e++) {
      if (!counts[e]) continue;
      experts.push(e);
      starts.push(R);
      sizes.push(counts[e]);
      R += counts[e];
    }
    if (!R) continue;
    const rows = new Int32Array(R), flat = new Int32Array(R), fill = Int32Array.from(starts);
    for (let t = 0; t < N; t++) {
      for (let q = 0; q < experts.length; q++) {
        const i = t * E + experts[q];
        if (coefs[i] !== 0) {
          rows[fill[q]] = t;
          flat[fill[q]++] = i;
        }
      }
    }
    const c = new Float32Array(R);
    for (let i = 0; i < R; i++) c[i] = coefs[flat[i]];
    out.push({
      s,
      rows,
      flat,
      c,
      experts,
      starts,
      counts: sizes,
      r0,
    });
    r0 += R;
  }
  return out;
}
