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
 * OpenBLAS results do not depend on the leading dimensions, tested), the sigmoid through the backend's own
 * Sigmoid kernel code (kernels.c `fl_unary`), every element-wise product rounded to float32 as the Multiply
 * kernel does, tfjs's Sigmoid gradient `dy·(y·(1−y))`, the row sums of the coef gradient in double as the
 * Sum kernel, the scatters added to zeros in row order as UnsortedSegmentSum, and the gradient of x passed
 * per slice (x is an input once per non-empty slice, last slice first), so the tape adds them to x's other
 * gradients in the order it adds the tfjs form's per-slice gathers (likewise coef).
 *
 * Only on the native backend; {@link sparseTrainActive} says whether callers should use it
 * (`FINELAB_SPARSE_TRAIN=tfjs` turns it off, for comparisons).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { loadBlas, loadKernels } from "../backends/native/mod.ts";
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

/** Options of {@link sparseMixtureTrain}. */
export interface SparseTrainOptions {
  /** S output slices (FineRMoE's G_O); the expert count must be a multiple. Default 1. */
  slices?: number;
}

/** One non-empty output slice of a call: its rows (expert after expert) and what the forward kept. */
interface SliceState {
  s: number;
  /** Token of each row. */
  rows: Int32Array;
  /** Flat coef index `t·E + e` of each row. */
  flat: Int32Array;
  /** Experts with rows, their first row and row count. */
  experts: number[];
  starts: number[];
  counts: number[];
  /** Gathered rows `[R, D]`, a, b, sigmoid(a), h `[R, W]`, unweighted outputs `[R, O]`. */
  xs: Float32Array;
  a: Float32Array;
  b: Float32Array;
  sig: Float32Array;
  h: Float32Array;
  o: Float32Array;
}

/** A tensor's float32 values (no copy on the native backend); read only. */
function vals(t: tf.Tensor): Float32Array {
  return f32(tf.backend() as unknown as CpuBackend, t, "sparseMixtureTrain");
}

/**
 * `y [N, S·O]`: slice s is `Σ_{e in slice s} coef[:, e] · expert_e(x)`, each expert run on its rows only
 * (`values` is the CPU copy of coef), with the gradient of the tfjs form (see the module doc). Needs the
 * native backend.
 */
export function sparseMixtureTrain(
  x: tf.Tensor2D,
  coef: tf.Tensor2D,
  values: ArrayLike<number>,
  w: { w13: tf.Tensor; w2: tf.Tensor },
  opts: SparseTrainOptions = {},
): tf.Tensor2D {
  const [N, D] = x.shape, E = coef.shape[1], S = opts.slices ?? 1;
  const H = w.w2.shape[0] as number, O = w.w2.shape[1] as number, W = H / E, per = E / S;
  if (values.length !== N * E) throw new Error(`sparseMixtureTrain: ${values.length} values for coef [${N}, ${E}]`);
  if (!Number.isInteger(W) || !Number.isInteger(per) || w.w13.size !== D * 2 * H) {
    throw new Error(
      `sparseMixtureTrain: w13 [${w.w13.shape}], w2 [${w.w2.shape}] do not fit ${E} experts in ${S} slices of x [${N}, ${D}]`,
    );
  }
  // Rows of every slice, expert after expert (the order of sparseMixture's gather).
  const slices: SliceState[] = [];
  for (let s = 0; s < S; s++) {
    const rows: number[] = [],
      flat: number[] = [],
      experts: number[] = [],
      starts: number[] = [],
      counts: number[] = [];
    for (let e = s * per; e < (s + 1) * per; e++) {
      const before = rows.length;
      for (let t = 0; t < N; t++) {
        if (values[t * E + e] !== 0) {
          rows.push(t);
          flat.push(t * E + e);
        }
      }
      if (rows.length > before) {
        experts.push(e);
        starts.push(before);
        counts.push(rows.length - before);
      }
    }
    if (!rows.length) continue;
    const R = rows.length;
    slices.push({
      s,
      rows: Int32Array.from(rows),
      flat: Int32Array.from(flat),
      experts,
      starts,
      counts,
      xs: new Float32Array(R * D),
      a: new Float32Array(R * W),
      b: new Float32Array(R * W),
      sig: new Float32Array(R * W),
      h: new Float32Array(R * W),
      o: new Float32Array(R * O),
    });
  }
  if (!slices.length) return tf.zeros([N, S * O]);
  const blas = loadBlas(), k = loadKernels().k, SO = S * O, H2 = 2 * H;
  const coefs = Float32Array.from(values);
  // Inputs: x and coef once per non-empty slice, last slice first (the tape's order for the tfjs form's
  // per-slice gathers), then w13, w2.
  const order = [...slices].reverse();
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xv = vals(args[0] as tf.Tensor), w13 = vals(args[2 * order.length] as tf.Tensor);
    const w2 = vals(args[2 * order.length + 1] as tf.Tensor);
    const y = pool.zeros(N * SO);
    for (const st of slices) {
      const { rows, xs, a, b, sig, h, o } = st;
      for (let i = 0; i < rows.length; i++) xs.set(xv.subarray(rows[i] * D, (rows[i] + 1) * D), i * D);
      st.experts.forEach((e, q) => {
        const r0 = st.starts[q], n = st.counts[q];
        const xe = xs.subarray(r0 * D), ae = a.subarray(r0 * W, (r0 + n) * W), be = b.subarray(r0 * W);
        blas.sgemm(false, false, n, W, D, xe, D, w13.subarray(e * W), H2, ae, W);
        blas.sgemm(false, false, n, W, D, xe, D, w13.subarray(H + e * W), H2, be, W);
        k.fl_unary(2, ae, sig.subarray(r0 * W), n * W); // the Sigmoid kernel
        for (let j = r0 * W; j < (r0 + n) * W; j++) h[j] = Math.fround(Math.fround(a[j] * sig[j]) * b[j]);
        blas.sgemm(false, false, n, O, W, h.subarray(r0 * W), W, w2.subarray(e * W * O), O, o.subarray(r0 * O), O);
      });
      // y[t, slice] += coef · o (the weighting Multiply, then UnsortedSegmentSum into zeros in row order)
      for (let i = 0; i < rows.length; i++) {
        const c = coefs[st.flat[i]], yb = rows[i] * SO + st.s * O, ob = i * O;
        for (let j = 0; j < O; j++) y[yb + j] += Math.fround(o[ob + j] * c);
      }
    }
    return {
      value: tf.tensor2d(y, [N, SO]),
      gradFunc: (dy: tf.Tensor) => {
        const dyv = vals(dy), dw13 = pool.zeros(D * H2), dw2 = pool.zeros(H * O);
        const dxs: tf.Tensor[] = [], dcs: tf.Tensor[] = [];
        for (const st of order) {
          const { rows, flat, xs, a, b, sig, h, o } = st, R = rows.length;
          // The weighting Multiply's gradient: do = dy·coef; dcoef = Σ_j fround(dy·o) in double (Sum kernel).
          const dO = new Float32Array(R * O), dc = pool.zeros(N * E);
          for (let i = 0; i < R; i++) {
            const c = coefs[flat[i]], yb = rows[i] * SO + st.s * O, ob = i * O;
            let acc = 0;
            for (let j = 0; j < O; j++) {
              const g = dyv[yb + j];
              dO[ob + j] = Math.fround(g * c);
              acc += Math.fround(g * o[ob + j]);
            }
            dc[flat[i]] += Math.fround(acc);
          }
          const dX = new Float32Array(R * D), dh = new Float32Array(R * W), da = new Float32Array(R * W);
          const db = new Float32Array(R * W), dXa = new Float32Array(R * D);
          st.experts.forEach((e, q) => {
            const r0 = st.starts[q], n = st.counts[q], dOe = dO.subarray(r0 * O), he = h.subarray(r0 * W);
            blas.sgemm(false, true, n, W, O, dOe, O, w2.subarray(e * W * O), O, dh.subarray(r0 * W), W);
            blas.sgemm(true, false, W, O, n, he, W, dOe, O, dw2.subarray(e * W * O), O);
            for (let j = r0 * W; j < (r0 + n) * W; j++) {
              const s = Math.fround(a[j] * sig[j]), ds = Math.fround(dh[j] * b[j]);
              db[j] = Math.fround(dh[j] * s);
              const dsig = Math.fround(ds * a[j]), sg = sig[j];
              da[j] = Math.fround(Math.fround(ds * sg) + Math.fround(dsig * Math.fround(sg * Math.fround(1 - sg))));
            }
            const xe = xs.subarray(r0 * D), dbe = db.subarray(r0 * W), dae = da.subarray(r0 * W);
            blas.sgemm(false, true, n, D, W, dbe, W, w13.subarray(H + e * W), H2, dX.subarray(r0 * D), D);
            blas.sgemm(true, false, D, W, n, xe, D, dbe, W, dw13.subarray(H + e * W), H2);
            blas.sgemm(false, true, n, D, W, dae, W, w13.subarray(e * W), H2, dXa.subarray(r0 * D), D);
            blas.sgemm(true, false, D, W, n, xe, D, dae, W, dw13.subarray(e * W), H2);
          });
          // dxs = db-path + da-path (the tape's add), then scattered into the tokens (gather's gradient).
          const dx = pool.zeros(N * D);
          for (let i = 0; i < R; i++) {
            const xb = rows[i] * D, rb = i * D;
            for (let j = 0; j < D; j++) dx[xb + j] += Math.fround(dX[rb + j] + dXa[rb + j]);
          }
          dxs.push(tf.tensor2d(dx, [N, D]));
          dcs.push(tf.tensor2d(dc, [N, E]));
        }
        return [...dxs, ...dcs, tf.tensor(dw13, w.w13.shape), tf.tensor(dw2, w.w2.shape)];
      },
    };
  });
  return f(...order.map(() => x), ...order.map(() => coef), w.w13, w.w2) as tf.Tensor2D;
}
