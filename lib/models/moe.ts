/**
 * Shared pieces of the routed (sparse) FFN variants `topk_moe`, `dsmoe` and `finermoe`:
 *
 * - gradient-free helpers ({@link stopGradient}, {@link noGrad}): tfjs has no public stop-gradient
 *   op and no gradient for `TopK`, `ArgMax` or comparisons, so routing masks are computed inside a
 *   `tf.customGrad` whose forward is not recorded on the tape and whose gradient is zero;
 * - routing ops: {@link topkMask}, {@link maskedSoftmax};
 * - the load-balance loss of Switch / DeepSeek (batch level) and FineRMoE (sequence level),
 *   {@link balanceLoss};
 * - the two ways to compute a mixture of experts: {@link maskedMixture} (every expert on every
 *   token, outputs weighted by a coefficient matrix that is zero for unselected experts: exact,
 *   differentiable everywhere, used for training) and {@link sparseMixture} (each expert runs only
 *   on the rows routed to it: gather, expert, weight, segment-sum; used for inference, and for
 *   training where a variant allows it). Both give the same numbers up to float rounding (tested).
 *   Sparse training on the native backend runs lib/models/sparse_train.ts `sparseMixtureTrain`
 *   instead: the same computation as one op with its own gradient (sgemms on the experts' weights in
 *   place, no tfjs op per expert), bit-identical to `sparseMixture` + `expertRunner({ split: true })`
 *   in output and every gradient (tested); keep the two in step when changing either;
 * - the optional interface a variant implements to be upcycled from a dense checkpoint
 *   ({@link DenseUpcycling}; lib/models/upcycle.ts calls it).
 *
 * The cost model used by the sparse metrics (`SparseCost`) lives in lib/models/sparse_metrics.ts.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ModelConfig } from "../core/config.ts";
import type { RoutedFfn, SparseCost } from "./sparse_metrics.ts";
import { matmul, silu } from "../backends/ops.ts";
import { swiglu } from "../backends/fused.ts";

// ---- gradient-free helpers ------------------------------------------------------------------------

/** `x` unchanged in the forward pass, zero gradient. */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  return noGrad([x], (a) => tf.clone(a)) as T;
}

/**
 * `fn(...inputs)` computed without recording it for autodiff: the ops run inside a
 * `tf.customGrad` forward (not on the tape) and the inputs get a zero gradient. For masks from
 * `topk`/`argMax`/comparisons, which have no gradient in tfjs. `fn` must return a new tensor.
 */
export function noGrad<T extends tf.Tensor>(inputs: tf.Tensor[], fn: (...xs: tf.Tensor[]) => T): T {
  const shapes = inputs.map((t) => t.shape);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xs = args.slice(0, inputs.length) as tf.Tensor[];
    return { value: fn(...xs), gradFunc: () => shapes.map((s) => tf.zeros(s)) };
  });
  return f(...inputs) as T;
}

// ---- routing ops -----------------------------------------------------------------------------------

/**
 * Float 0/1 mask `[N, E]` of the `k` largest logits of every row (no gradient). Ties go to the
 * lower expert index (tfjs `topk` is stable).
 */
export function topkMask(logits: tf.Tensor2D, k: number): tf.Tensor2D {
  const E = logits.shape[1];
  if (!(Number.isInteger(k) && k >= 1 && k <= E)) throw new Error(`topkMask: k = ${k} must be in [1, ${E}]`);
  return noGrad([logits], (l) => {
    if (k === E) return tf.onesLike(l); // (also: tfjs oneHot needs depth ≥ 2)
    const { indices } = tf.topk(l, k);
    return tf.sum(tf.oneHot(indices as tf.Tensor2D, E, 1, 0, "float32"), 1);
  }) as tf.Tensor2D;
}

/**
 * Softmax over the entries where `mask` is 1, along the last axis; exactly 0 where it is 0 (the
 * masked logits are shifted by -1e9, so exp underflows to 0). Gradient flows to the selected
 * logits only. A row with an empty mask gives a uniform row (callers never produce one).
 */
export function maskedSoftmax<T extends tf.Tensor>(logits: T, mask: tf.Tensor): T {
  return tf.softmax(tf.add(logits, tf.mul(tf.sub(mask, 1), 1e9))) as T;
}

/**
 * Load-balance loss (without its coefficient) of Switch Transformer / DeepSeek-V2, for top-k
 * routing of `N = groups·seqLen` tokens over E experts:
 *
 * `L = mean over groups g of  Σ_e f_{g,e} · P_{g,e}`, with
 * `f_{g,e} = E / (k·T_g) · #{tokens t of g routed to e}` (from `mask`, no gradient) and
 * `P_{g,e} = mean over tokens t of g of probs[t, e]` (the FULL softmax over all E logits).
 *
 * A group is the whole batch (`seqLen` = N: Switch / DeepSeek "expert-level" loss) or one
 * sequence (`seqLen` = tokens per sequence: FineRMoE's `seq_aux_loss`). It equals 1 when routing
 * and probabilities are uniform; a router sending everything to k experts with probability 1/k
 * each scores E/k.
 */
export function balanceLoss(probs: tf.Tensor2D, mask: tf.Tensor2D, k: number, seqLen?: number): tf.Scalar {
  const [N, E] = probs.shape;
  const T = seqLen ?? N;
  if (!(Number.isInteger(T) && T >= 1 && N % T === 0)) {
    throw new Error(`balanceLoss: ${N} tokens cannot be grouped into sequences of ${T}`);
  }
  const G = N / T;
  const counts = tf.sum(tf.reshape(mask, [G, T, E]), 1); // [G, E], no gradient (mask has none)
  const P = tf.mean(tf.reshape(probs, [G, T, E]), 1); // [G, E]
  return tf.mul(tf.sum(tf.mul(counts, P)), E / (k * T * G)) as tf.Scalar;
}

/**
 * Whether the active backend can read tensor data synchronously inside a forward pass (the
 * sparse path needs the routing on the CPU). `webgpu` cannot in Deno (no OffscreenCanvas,
 * compute.md), so routed variants fall back to the masked computation there.
 */
export function canReadSync(): boolean {
  return tf.getBackend() !== "webgpu";
}

// ---- mixtures --------------------------------------------------------------------------------------

/**
 * Mixture of E SwiGLU experts of width w stored side by side, every expert on every token:
 * `y = ((SiLU(x W_g) ⊙ x W_u) ⊙ expand(coef)) W_2`, where `w13 = [W_g | W_u]` is `[d, 2·E·w]`
 * (expert e owns gate columns `e·w..(e+1)·w` and up columns `E·w + e·w..`), `w2` is `[E·w, out]`
 * (expert e owns rows `e·w..(e+1)·w`) and `coef` `[N, E]` weights each expert's output (0 =
 * unselected: exactly no contribution and no gradient to that expert's weights). Because `w2` is
 * linear, this equals `Σ_e coef[:, e] · expert_e(x)`.
 */
export function maskedMixture(
  x: tf.Tensor2D,
  w13: tf.Tensor,
  w2: tf.Tensor,
  coef: tf.Tensor2D,
): tf.Tensor2D {
  const N = x.shape[0], E = coef.shape[1], H = w2.shape[0] as number, w = H / E;
  const prod = swiglu(matmul(x, w13)); // [N, E·w]
  const scaled = tf.reshape(tf.mul(tf.reshape(prod, [N, E, w]), tf.reshape(coef, [N, E, 1])), [N, H]);
  return matmul(scaled, w2);
}

/** Options of {@link expertRunner}. */
export interface ExpertRunnerOptions {
  /**
   * Split the weights into all experts' pieces once (one SplitV; its gradient is one Concat) instead of
   * slicing each expert out when it runs. Use it when training: the gradient of every per-expert slice is a
   * zero-padded copy of the whole weight matrix, added up over experts (quadratic in the expert count).
   * Slicing (the default) touches only the experts that run, which is what decoding wants. Same values.
   */
  split?: boolean;
}

/**
 * Expert `e` of a {@link maskedMixture} layout as a function of its rows `xs` (unweighted):
 * `(SiLU(xs W_g,e) ⊙ xs W_u,e) W_2,e`, slicing only the expert's own columns/rows out of `w13`/`w2`
 * (so decoding one token touches the weights of its k experts only), or, with `split`, taking them from a
 * split of the whole weights made once.
 */
export function expertRunner(
  w13: tf.Tensor,
  w2: tf.Tensor,
  experts: number,
  opts: ExpertRunnerOptions = {},
): (e: number, xs: tf.Tensor2D) => tf.Tensor2D {
  const d = w13.shape[0] as number, H = w2.shape[0] as number, w = H / experts, out = w2.shape[1] as number;
  if (opts.split) {
    const p13 = tf.split(w13, 2 * experts, 1), p2 = tf.split(w2, experts, 0); // gates 0..E-1, ups E..2E-1
    return (e, xs) => matmul(tf.mul(silu(matmul(xs, p13[e])), matmul(xs, p13[experts + e])), p2[e]);
  }
  return (e, xs) => {
    const a = matmul(xs, tf.slice(w13, [0, e * w], [d, w]));
    const b = matmul(xs, tf.slice(w13, [0, H + e * w], [d, w]));
    return matmul(tf.mul(silu(a), b), tf.slice(w2, [e * w, 0], [w, out]));
  };
}

/**
 * Sparse mixture: `y[t] = Σ_e coef[t, e] · run(e, x[t])`, running expert e only on the rows t where
 * `coef[t, e] != 0` (read from `values`, the CPU copy of `coef`; an exactly-zero weight
 * contributes exactly nothing, so skipping it is exact). The rows of all experts are gathered at once
 * (expert after expert) and split into one block per expert; the outputs are concatenated, weighted by the
 * gathered coefficients (so the router gets gradients) and summed back into their tokens with one
 * `unsortedSegmentSum` (tokens without any expert get 0). One gather, split, concat and scatter per call,
 * whatever the expert count: per-expert gathers and slices would each have a full-size gradient.
 * `experts` restricts the mixture to a subset of coef's columns (FineRMoE: one output slice).
 */
export function sparseMixture(
  x: tf.Tensor2D,
  coef: tf.Tensor2D,
  values: ArrayLike<number>,
  run: (expert: number, xs: tf.Tensor2D) => tf.Tensor2D,
  opts: { outDim: number; experts?: readonly number[] },
): tf.Tensor2D {
  const [N, E] = coef.shape;
  if (values.length !== N * E) throw new Error(`sparseMixture: ${values.length} values for coef [${N}, ${E}]`);
  const experts = opts.experts ?? Array.from({ length: E }, (_, e) => e);
  const used: number[] = [], sizes: number[] = [], rows: number[] = [], flat: number[] = [];
  for (const e of experts) {
    const before = rows.length;
    for (let t = 0; t < N; t++) {
      if (values[t * E + e] !== 0) {
        rows.push(t);
        flat.push(t * E + e);
      }
    }
    if (rows.length > before) {
      used.push(e);
      sizes.push(rows.length - before);
    }
  }
  if (!rows.length) return tf.zeros([N, opts.outDim]);
  const ids = tf.tensor1d(rows, "int32");
  const xs = tf.gather(x, ids) as tf.Tensor2D;
  const parts = used.length === 1 ? [xs] : tf.split(xs, sizes, 0) as tf.Tensor2D[];
  const outs = used.map((e, i) => run(e, parts[i]));
  const weight = tf.reshape(tf.gather(tf.reshape(coef, [N * E]), tf.tensor1d(flat, "int32")), [rows.length, 1]);
  return scatterRows(tf.mul(outs.length === 1 ? outs[0] : tf.concat(outs, 0), weight), ids, N);
}

/**
 * `unsortedSegmentSum(rows, ids, n)` for ids that are all in [0, n), with the gradient `gather(dy, ids)`.
 * tfjs's generic gradient also handles negative ids (maximum, greaterEqual, a broadcast logicalAnd and a
 * select), which is the same value here and was the slowest part of a sparse step on the cpu-based backends.
 */
function scatterRows(rows: tf.Tensor2D, ids: tf.Tensor1D, n: number): tf.Tensor2D {
  const f = tf.customGrad((r, save) => {
    (save as tf.GradSaveFunc)([ids]);
    return {
      value: tf.unsortedSegmentSum(r as tf.Tensor2D, ids, n),
      gradFunc: (dy, saved) => tf.gather(dy as tf.Tensor, (saved as tf.Tensor[])[0]),
    };
  });
  return f(rows) as tf.Tensor2D;
}

// ---- upcycling interface ---------------------------------------------------------------------------

/** One layer's dense SwiGLU FFN (the `dense` variant's `w13` `[d_model, 2·d_ff]` and `w2` `[d_ff, d_model]`). */
export interface DenseFfnWeights {
  /** `[d_model, 2·d_ff]` row-major: columns `0..d_ff` gate (w1), `d_ff..2·d_ff` up (w3). */
  w13: Float32Array;
  /** `[d_ff, d_model]` row-major. */
  w2: Float32Array;
  d_model: number;
  d_ff: number;
}

/**
 * What a variant implements to be initialised from a dense checkpoint (lib/models/upcycle.ts).
 * Returns the layer's FFN parameters it derives from the dense FFN, by relative name; the
 * parameters it leaves out (routers, gates) get the variant's seeded init.
 */
export interface DenseUpcycling {
  upcycleFromDense(cfg: ModelConfig, dense: DenseFfnWeights): Record<string, Float32Array>;
}

/**
 * Columns `[c0, c0 + n)` of a row-major `[rows, cols]` matrix, times `scale`, as a new
 * `[rows, n]` array.
 */
export function sliceColumns(
  m: Float32Array,
  rows: number,
  cols: number,
  c0: number,
  n: number,
  scale = 1,
): Float32Array {
  return subMatrix(m, cols, 0, rows, c0, n, scale);
}

/** Sub-matrix rows `[r0, r0 + nr)`, columns `[c0, c0 + nc)` of a row-major `[·, cols]` matrix, times `scale`. */
export function subMatrix(
  m: Float32Array,
  cols: number,
  r0: number,
  nr: number,
  c0: number,
  nc: number,
  scale = 1,
): Float32Array {
  const out = new Float32Array(nr * nc);
  for (let r = 0; r < nr; r++) {
    for (let j = 0; j < nc; j++) out[r * nc + j] = m[(r0 + r) * cols + c0 + j] * scale;
  }
  return out;
}

/** Concatenates row-major matrices with equal row counts along the columns. */
export function concatColumns(parts: readonly { data: Float32Array; cols: number }[], rows: number): Float32Array {
  const total = parts.reduce((a, p) => a + p.cols, 0), out = new Float32Array(rows * total);
  let c0 = 0;
  for (const p of parts) {
    for (let r = 0; r < rows; r++) out.set(p.data.subarray(r * p.cols, (r + 1) * p.cols), r * total + c0);
    c0 += p.cols;
  }
  return out;
}

/**
 * paramCount, flopsPerToken and sparseCost of a routed FFN whose tokens each use a fixed number of experts
 * (`active_experts` of its {@link SparseCost}, e.g. top-k): every expert's parameters plus the fixed ones, and
 * the fixed FLOPs plus the active experts' (what sparse inference computes).
 */
export function fixedActiveCost(
  cost: (cfg: ModelConfig) => SparseCost,
): Pick<RoutedFfn, "paramCount" | "flopsPerToken" | "sparseCost"> {
  return {
    paramCount(cfg: ModelConfig): number {
      const c = cost(cfg);
      return c.fixed_params + c.experts * c.expert_params;
    },
    flopsPerToken(cfg: ModelConfig): number {
      const c = cost(cfg);
      return c.fixed_flops + c.active_experts! * c.expert_flops;
    },
    sparseCost: cost,
  };
}

/**
 * A routed variant's `model.ffn` options with its defaults under them; throws with every problem
 * `problems(cfg)` finds (`invalid <kind> options:` then one line each).
 */
export function resolvedOptions<T extends object>(
  cfg: ModelConfig,
  defaults: T,
  check: { kind: string; problems: (cfg: ModelConfig) => string[] },
): T {
  const e = check.problems(cfg);
  if (e.length) throw new Error(`invalid ${check.kind} options:\n  ${e.join("\n  ")}`);
  return { ...defaults, ...(cfg.ffn as unknown as Partial<T>) };
}

/** One problem per key of `model.ffn` that is not `kind` or an option of the variant (a key of `defaults`). */
export function unknownOptions(cfg: ModelConfig, kind: string, defaults: object): string[] {
  const options = Object.keys(defaults);
  return Object.keys(cfg.ffn).filter((key) => key !== "kind" && !options.includes(key)).map((key) =>
    `model.ffn.${key} is not an option of ffn kind "${kind}" (options: ${options.join(", ")})`
  );
}
