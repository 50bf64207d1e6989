/**
 * FineRMoE (arXiv 2603.13364, code github.com/liaoning97/FineRMoE): routed experts fine-grained in
 * both the intermediate dimension (G_I chunks of the dense FFN, each replicated R_I times) and the
 * output dimension (G_O slices of d_model, each with R_O candidate groups), one router, a shared
 * expert. See /work/shared/research/finermoe.md; where the paper and the official code differ this
 * follows the code by default and offers the paper's form as an option.
 *
 * ## Sizes (h = d_model, H = d_ff)
 *
 * He = H / G_I (expert hidden width), he = h / G_O (expert output width),
 * N = G_O·R_O·G_I·R_I routed experts, G_O·T_I active per token. Flat expert index
 * `k = (i·R_O + r)·(G_I·R_I) + c`: output slice i, replica group r, chunk c (source chunk `c mod G_I`).
 * Expert k: `e_k(x) = (SiLU(x Wg_k) ⊙ x W1_k) W2_k ∈ R^{he}`, Wg_k, W1_k `[h, He]`, W2_k `[He, he]`.
 *
 * ## Forward pass (Algorithm 1 and the code's `finermoe_router`)
 *
 * ```
 * z = x · router                                   # [N_tok, N], no bias/noise
 * view z as [N_tok, G_O·R_O groups, G_I·R_I]
 * sum_mask = top-T_I inside every group
 * group score = Σ of the group's raw logits; per output slice i the argmax over its R_O groups -> cc_mask
 * mask = sum_mask ∧ cc_mask                       # exactly T_I experts in one group per slice
 * c = combine(z, mask)                             # joint_softmax (code) | slice_softmax | raw (paper Eq. 7)
 * O_i = Σ_{k in slice i} c_k · e_k(x)              # sparse sum
 * y = concat(O_0..O_{G_O-1}) + σ(x w_g) · FFN_shared(x)   # sparse concat + (gated) shared expert
 * aux = balance_coef · seq-level load-balance loss (DeepSeek-V2 / the code's seq_aux_loss)
 * ```
 *
 * - `joint_softmax` (code, default): one softmax over all G_O·T_I selected logits, so the output
 *   slices compete for weight. `slice_softmax`: a softmax per output slice. `raw` (the paper's Eq. 7
 *   read literally): the selected raw logits as weights.
 * - Shared expert `gated` (code): `sigmoid(x · shared.gate)` times a full-width SwiGLU; `plain`
 *   (paper text): no gate; `none`: no shared expert.
 * - Balance loss per sequence: `f_e = N/(G_O·T_I·T) · #{t routed to e}`, `P_e = mean_t softmax(z_t)_e`
 *   (full softmax over all N), `Σ_e f_e·P_e`, averaged over sequences, times `balance_coef`
 *   (`ctx.seqLen` gives the sequence length; default model.seq_len).
 * - Masks are computed outside autodiff; the router learns through the selected weights and the
 *   balance loss only (as in the code; no STE).
 *
 * Computation: training uses the masked form (every expert on every token, weighted by c, which
 * is 0 for unselected experts) unless `train_compute = sparse`; inference runs each expert only on
 * its tokens (masked on webgpu). Both are tested equal to an explicit per-expert loop. Sparse
 * training runs each expert on its tokens: on the native backend as ONE op for all output slices
 * with its own gradient (lib/models/sparse_train.ts: sgemms on each expert's columns of w13 and rows
 * of w2, no tfjs op per expert), elsewhere (or with `FINELAB_SPARSE_TRAIN=tfjs`) as tfjs ops per
 * expert ({@link sparseMixture} per slice); the two give bit-identical outputs and gradients
 * (tested), so the switch changes no number.
 *
 * ## Options (`model.ffn.<option>`)
 *
 * | option | values | default | meaning |
 * |---|---|---|---|
 * | `g_i` | integer ≥ 1 dividing d_ff | 8 | G_I, intermediate granularity |
 * | `r_i` | integer ≥ 1 | 1 | R_I, replicas of every chunk inside a group |
 * | `g_o` | integer ≥ 1 dividing d_model | 2 | G_O, output granularity (output slices) |
 * | `r_o` | integer ≥ 1 | 2 | R_O, candidate groups per output slice |
 * | `t_i` | integer in [1, g_i·r_i] | 1 | T_I, experts per selected group |
 * | `combine` | `joint_softmax` \| `slice_softmax` \| `raw` | `joint_softmax` | combination weights (see above) |
 * | `shared_expert` | `gated` \| `plain` \| `none` | `gated` | shared expert form |
 * | `balance_coef` | number in [0, 10] | 0.001 | coefficient of the sequence-level balance loss (0 = off) |
 * | `train_compute` | `masked` \| `sparse` | `masked` | how training computes the routed part |
 * | `routers` | `single` \| `separate` | `single` | one router for both levels (the paper) or one per level (its Table 3 ablation; see {@link FinermoeOptions.routers}) |
 *
 * N = g_o·r_o·g_i·r_i must be ≤ 4096.
 *
 * ## Parameters of one layer (relative to `layers.<i>.ffn.`)
 *
 * | name | shape | init | decay |
 * |---|---|---|---|
 * | `router` | `[d_model, N]` | N(0, init_std²) | no |
 * | `w13` | `[d_model, 2·N·He]`: Wg_k at columns `k·He..(k+1)·He`, W1_k at `N·He + k·He..` | N(0, init_std²) | yes |
 * | `w2` | `[N·He, he]`: W2_k at rows `k·He..(k+1)·He` | N(0, (init_std/√(2·n_layers))²) | yes |
 * | `shared.w13` | `[d_model, 2·d_ff]` (dense layout), unless `shared_expert = none` | N(0, init_std²) | yes |
 * | `shared.w2` | `[d_ff, d_model]`, unless `none` | N(0, (init_std/√(2·n_layers))²) | yes |
 * | `shared.gate` | `[d_model, 1]`, only `gated` | N(0, init_std²) | no |
 * | `concat_router` | `[d_model, G_O·R_O]`, only `routers = separate` | N(0, init_std²) | no |
 *
 * ## Upcycling from a dense FFN (`upcycleFromDense`; Eqs. 9–10 and the code's converter)
 *
 * Shared expert = exact copy of the dense FFN. Routed expert k with output slice
 * `i = k div (R_O·G_I·R_I)` and source chunk `s = (k mod G_I·R_I) mod G_I`:
 * `Wg_k = Wg[:, s·He..]`, `W1_k = W1[:, s·He..]`, `W2_k = coeff · W2[s·He..(s+1)·He, i·he..(i+1)·he]`,
 * with `coeff = 1` when there is a shared expert and `coeff = G_I` without one (code-only detail).
 * R_I/R_O replicas are identical copies; the router and shared gate keep their seeded init
 * (N(0, init_std²), the converter's N(0, 0.02)). With g_i = r_i = g_o = r_o = t_i = 1 and no shared
 * expert, the upcycled layer equals the dense FFN (tested).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ModelConfig } from "../../core/config.ts";
import { matmul, splitLast } from "../../backends/ops.ts";
import { gatedMul, swiglu } from "../../backends/fused.ts";
import {
  balanceLoss,
  canReadSync,
  type DenseFfnWeights,
  type DenseUpcycling,
  expertRunner,
  fixedActiveCost,
  resolvedOptions,
  sliceColumns,
  sparseMixture,
  subMatrix,
  unknownOptions,
} from "../moe.ts";
import type { RoutedFfn, SparseCost } from "../sparse_metrics.ts";
import { finermoeRouting } from "../finermoe_routing.ts";
import { finermoeTrainRouting, trainRoutingActive } from "../finermoe_train_routing.ts";
import { sparseMixtureTrain, sparseTrainActive } from "../sparse_train.ts";
import type { FfnContext, FfnParams, ParamSpec } from "./types.ts";

/** Combination weights. */
export type FinermoeCombine = "joint_softmax" | "slice_softmax" | "raw";
/** Shared expert form. */
export type FinermoeShared = "gated" | "plain" | "none";

/** The options as written in `model.ffn` (all optional; see the module doc for defaults). */
export interface FinermoeOptions {
  kind: "finermoe";
  /** G_I, intermediate granularity: an integer >= 1 dividing d_ff. Default 8. */
  g_i?: number;
  /** R_I, replicas of every chunk inside a group (integer >= 1). Default 1. */
  r_i?: number;
  /** G_O, output granularity (output slices): an integer >= 1 dividing d_model. Default 2. */
  g_o?: number;
  /** R_O, candidate groups per output slice (integer >= 1). Default 2. */
  r_o?: number;
  /** T_I, experts per selected group: an integer in [1, g_i·r_i]. Default 1. */
  t_i?: number;
  /** Combination weights. Default `joint_softmax`. */
  combine?: FinermoeCombine;
  /** Shared expert form. Default `gated`. */
  shared_expert?: FinermoeShared;
  /** Coefficient of the sequence-level balance loss, in [0, 10] (0 = off). Default 0.001. */
  balance_coef?: number;
  /** How training computes the routed part (same function). Default `masked`. */
  train_compute?: "masked" | "sparse";
  /**
   * Routers per fine-grained dimension. `single` (the paper, Algorithm 1 and the code): ONE router
   * `Linear(d_model, N)` whose logits drive both levels: top-T_I inside each group (sparse sum) and, per output
   * slice, the candidate group with the largest SUM of its experts' logits (sparse concat); the combination
   * weights come from the same logits. `separate` (our reading of the Table 3 ablation, whose design the paper
   * does not give): the main router keeps the sparse-sum level and the weights, and a second router
   * `concat_router` `Linear(d_model, G_O·R_O)` picks the group per output slice (argmax over its R_O logits);
   * so that it learns, each slice's weights are multiplied by the softmax probability (over R_O) of the group
   * it picked (Switch-style top-1 gating). Default `single`.
   */
  routers?: FinermoeRouters;
}

/** Routers per fine-grained dimension (see {@link FinermoeOptions.routers}). */
export type FinermoeRouters = "single" | "separate";

/** Resolved options and derived sizes of one FineRMoE layer. */
export interface FinermoeShape {
  g_i: number;
  r_i: number;
  g_o: number;
  r_o: number;
  t_i: number;
  combine: FinermoeCombine;
  shared_expert: FinermoeShared;
  balance_coef: number;
  train_compute: "masked" | "sparse";
  routers: FinermoeRouters;
  /** Expert hidden width He = d_ff / G_I. */
  he_inter: number;
  /** Expert output width he = d_model / G_O. */
  he_out: number;
  /** Experts per group G_I·R_I. */
  group: number;
  /** Routed experts N = G_O·R_O·G_I·R_I. */
  experts: number;
  /** Active routed experts per token G_O·T_I. */
  active: number;
}

/** Defaults of the options (see the module doc). */
export const FINERMOE_DEFAULTS = {
  g_i: 8,
  r_i: 1,
  g_o: 2,
  r_o: 2,
  t_i: 1,
  combine: "joint_softmax",
  shared_expert: "gated",
  balance_coef: 0.001,
  train_compute: "masked",
  routers: "single",
} as const;

const ENUMS: Record<string, readonly string[]> = {
  combine: ["joint_softmax", "slice_softmax", "raw"],
  shared_expert: ["gated", "plain", "none"],
  train_compute: ["masked", "sparse"],
  routers: ["single", "separate"],
};
const MAX_EXPERTS = 4096;
const fmt = (v: unknown) => JSON.stringify(v);
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 1 && v <= MAX_EXPERTS;

function problems(cfg: ModelConfig): string[] {
  const f: Record<string, unknown> = { ...cfg.ffn }, e = unknownOptions(cfg, "finermoe", FINERMOE_DEFAULTS);
  const v = { ...FINERMOE_DEFAULTS, ...f } as Record<string, unknown>;
  for (const key of ["g_i", "r_i", "g_o", "r_o", "t_i"]) {
    if (!isInt(v[key])) e.push(`model.ffn.${key} = ${fmt(v[key])} must be an integer in [1, ${MAX_EXPERTS}]`);
  }
  if (isInt(v.g_i) && cfg.d_ff % v.g_i !== 0) {
    e.push(`model.ffn.g_i = ${v.g_i} must divide model.d_ff = ${cfg.d_ff} (expert hidden width d_ff / g_i)`);
  }
  if (isInt(v.g_o) && cfg.d_model % v.g_o !== 0) {
    e.push(`model.ffn.g_o = ${v.g_o} must divide model.d_model = ${cfg.d_model} (expert output width d_model / g_o)`);
  }
  if (isInt(v.g_i) && isInt(v.r_i) && isInt(v.t_i) && v.t_i > v.g_i * v.r_i) {
    e.push(`model.ffn.t_i = ${v.t_i} must be in [1, g_i·r_i = ${v.g_i * v.r_i}] (experts chosen per group)`);
  }
  if ([v.g_i, v.r_i, v.g_o, v.r_o].every(isInt)) {
    const n = (v.g_i as number) * (v.r_i as number) * (v.g_o as number) * (v.r_o as number);
    if (n > MAX_EXPERTS) e.push(`model.ffn g_o·r_o·g_i·r_i = ${n} routed experts must be at most ${MAX_EXPERTS}`);
  }
  for (const [key, values] of Object.entries(ENUMS)) {
    if (!values.includes(v[key] as string)) {
      e.push(`model.ffn.${key} = ${fmt(v[key])} is not one of: ${values.join(", ")}`);
    }
  }
  const c = v.balance_coef;
  if (!(typeof c === "number" && c >= 0 && c <= 10)) {
    e.push(`model.ffn.balance_coef = ${fmt(c)} must be a number in [0, 10]`);
  }
  return e;
}

/** Resolves the options (defaults applied) and sizes; throws with every problem when invalid. */
export function finermoeShape(cfg: ModelConfig): FinermoeShape {
  const f = resolvedOptions(cfg, FINERMOE_DEFAULTS, { kind: "finermoe", problems });
  const group = f.g_i * f.r_i;
  return {
    g_i: f.g_i,
    r_i: f.r_i,
    g_o: f.g_o,
    r_o: f.r_o,
    t_i: f.t_i,
    combine: f.combine,
    shared_expert: f.shared_expert,
    balance_coef: f.balance_coef,
    train_compute: f.train_compute,
    routers: f.routers,
    he_inter: cfg.d_ff / f.g_i,
    he_out: cfg.d_model / f.g_o,
    group,
    experts: f.g_o * f.r_o * group,
    active: f.g_o * f.t_i,
  };
}

/** The routed part (sparse sum + sparse concat) with the given computation; `[N_tok, d_model]`. */
export function finermoeRouted(
  x: tf.Tensor2D,
  p: FfnParams,
  coef: tf.Tensor2D,
  s: FinermoeShape,
  compute: "masked" | "sparse",
  opts: { training?: boolean } = {},
): tf.Tensor2D {
  const T = x.shape[0], N = s.experts, He = s.he_inter, per = N / s.g_o;
  if (compute === "masked") {
    const prod = swiglu(matmul(x, p.w13)); // [T, N·He]
    const scaled = tf.reshape(tf.mul(tf.reshape(prod, [T, N, He]), tf.reshape(coef, [T, N, 1])), [T, N * He]);
    const slices = s.g_o === 1 ? [scaled] : splitLast(scaled, new Array(s.g_o).fill(per * He));
    const w2s = s.g_o === 1 ? [p.w2] : tf.split(p.w2, s.g_o, 0);
    const outs = slices.map((a, i) => matmul(a, w2s[i])); // O_i = Σ_{k in slice i} c_k e_k(x)
    return outs.length === 1 ? outs[0] : tf.concat(outs, 1);
  }
  const values = coef.dataSync();
  if (opts.training && sparseTrainActive()) {
    // One op for all output slices, bit-identical to the tfjs form below (lib/models/sparse_train.ts).
    return sparseMixtureTrain(x, coef, { values, w13: p.w13, w2: p.w2, slices: s.g_o });
  }
  // Expert k = gate/up columns k·He of w13 ([gates | ups]) and rows k·He of w2 ([N·He, he_out]): the layout
  // expertRunner reads.
  const run = expertRunner(p.w13, p.w2, N, { split: opts.training });
  const outs = Array.from(
    { length: s.g_o },
    (_, i) =>
      sparseMixture(x, coef, values, run, {
        outDim: s.he_out,
        experts: Array.from({ length: per }, (_, j) => i * per + j),
      }),
  );
  return outs.length === 1 ? outs[0] : tf.concat(outs, 1);
}

/** The shared expert's contribution (zeros-free: null when there is none). */
function sharedOut(x: tf.Tensor2D, p: FfnParams, s: FinermoeShape): tf.Tensor2D | null {
  if (s.shared_expert === "none") return null;
  const y = matmul(swiglu(matmul(x, p["shared.w13"])), p["shared.w2"]);
  return s.shared_expert === "gated" ? gatedMul(y, matmul(x, p["shared.gate"])) : y;
}

function cost(cfg: ModelConfig): SparseCost {
  const s = finermoeShape(cfg), d = cfg.d_model, H = cfg.d_ff, N = s.experts;
  const shared = s.shared_expert === "none" ? 0 : 3 * d * H, gate = s.shared_expert === "gated" ? d : 0;
  const concat = s.routers === "separate" ? d * s.g_o * s.r_o : 0;
  const expert = 2 * d * s.he_inter + s.he_inter * s.he_out;
  return {
    experts: N,
    expert_params: expert,
    expert_flops: 2 * expert,
    fixed_params: d * N + shared + gate + concat,
    fixed_flops: 2 * (d * N + shared + gate + concat),
    active_experts: s.active,
  };
}

/** FineRMoE. */
export const variant: RoutedFfn & DenseUpcycling = {
  kind: "finermoe",
  description:
    "FineRMoE: experts fine-grained in intermediate and output dims, sparse sum + sparse concat, shared expert",
  defaults: FINERMOE_DEFAULTS,

  validate: problems,

  params(cfg: ModelConfig): ParamSpec[] {
    const s = finermoeShape(cfg), { d_model: d, d_ff: H, init_std: std, n_layers: L } = cfg, N = s.experts;
    const out = std / Math.sqrt(2 * L);
    const specs: ParamSpec[] = [
      { name: "router", shape: [d, N], init: "normal", std, decay: false },
      { name: "w13", shape: [d, 2 * N * s.he_inter], init: "normal", std, decay: true },
      { name: "w2", shape: [N * s.he_inter, s.he_out], init: "normal", std: out, decay: true },
    ];
    if (s.shared_expert !== "none") {
      specs.push(
        { name: "shared.w13", shape: [d, 2 * H], init: "normal", std, decay: true },
        { name: "shared.w2", shape: [H, d], init: "normal", std: out, decay: true },
      );
    }
    if (s.shared_expert === "gated") {
      specs.push({ name: "shared.gate", shape: [d, 1], init: "normal", std, decay: false });
    }
    if (s.routers === "separate") {
      specs.push({ name: "concat_router", shape: [d, s.g_o * s.r_o], init: "normal", std, decay: false });
    }
    return specs;
  },

  /** FLOPs: router, shared expert and the G_O·T_I active experts (what sparse inference computes). */
  ...fixedActiveCost(cost),

  apply(x: tf.Tensor2D, p: FfnParams, ctx: FfnContext): tf.Tensor2D {
    const s = finermoeShape(ctx.cfg), N = x.shape[0], T = ctx.seqLen ?? ctx.cfg.seq_len;
    let coef: tf.Tensor2D, lb: tf.Scalar | null = null;
    // Training on native: routing + balance loss as two ops, the same bits (lib/models/finermoe_train_routing.ts).
    if (ctx.training && trainRoutingActive(s)) ({ coef, lb } = finermoeTrainRouting(x, p.router, s, T));
    else {
      const r = finermoeRouting(x, p.router, s, p.concat_router);
      coef = r.coef;
      if (ctx.training) lb = balanceLoss(r.probs, r.mask, s.active, N % T === 0 ? T : N);
    }
    if (lb) {
      if (s.balance_coef > 0) ctx.addAuxLoss(tf.mul(lb, s.balance_coef));
      ctx.addStat("balance_loss", lb);
    }
    ctx.capture?.("gate", coef); // combination weights, 0 = unselected (end-of-run analysis)
    const sparse = canReadSync() && (!ctx.training || s.train_compute === "sparse");
    const routed = finermoeRouted(x, p, coef, s, sparse ? "sparse" : "masked", { training: ctx.training });
    const shared = sharedOut(x, p, s);
    return shared ? tf.add(routed, shared) : routed;
  },

  upcycleFromDense(cfg: ModelConfig, dense: DenseFfnWeights): Record<string, Float32Array> {
    const s = finermoeShape(cfg), { d_model: d, d_ff: H } = dense;
    if (H !== cfg.d_ff || d !== cfg.d_model) {
      throw new Error(
        `cannot upcycle finermoe: dense FFN is [${d}, ${H}], the model needs [${cfg.d_model}, ${cfg.d_ff}]`,
      );
    }
    const N = s.experts, He = s.he_inter, he = s.he_out, coeff = s.shared_expert === "none" ? s.g_i : 1;
    const w13 = new Float32Array(d * 2 * N * He), w2 = new Float32Array(N * He * he);
    for (let k = 0; k < N; k++) {
      const i = Math.floor(k / (s.r_o * s.group)), src = (k % s.group) % s.g_i;
      const g = sliceColumns(dense.w13, d, 2 * H, src * He, He),
        u = sliceColumns(dense.w13, d, 2 * H, H + src * He, He);
      for (let r = 0; r < d; r++) {
        w13.set(g.subarray(r * He, (r + 1) * He), r * 2 * N * He + k * He);
        w13.set(u.subarray(r * He, (r + 1) * He), r * 2 * N * He + N * He + k * He);
      }
      w2.set(subMatrix(dense.w2, d, src * He, He, i * he, he, coeff), k * He * he);
    }
    const out: Record<string, Float32Array> = { w13, w2 };
    if (s.shared_expert !== "none") {
      out["shared.w13"] = dense.w13.slice();
      out["shared.w2"] = dense.w2.slice();
    }
    return out;
  },
};
