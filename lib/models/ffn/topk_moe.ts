/**
 * Top-k mixture-of-experts FFN: the standard sparse baseline (Switch Transformer, Mixtral,
 * DeepSeek-style load balancing). E SwiGLU experts of width w, a linear softmax router, each
 * token goes to its k highest-scoring experts.
 *
 * ```
 * z = x · router                         # [N, E] logits (no bias, no noise)
 * p = softmax(z)                         # full softmax (the balance loss uses it)
 * m = topk_mask(z, k)                    # [N, E] 0/1, computed outside autodiff (tfjs has no TopK gradient)
 * c = renormalize ? softmax over the selected logits (Mixtral)   # Σ_e c = 1
 *                 : p ⊙ m                 (Switch / DeepSeek-V2)
 * y = Σ_e c[:, e] · expert_e(x),  expert_e(x) = (SiLU(x Wg_e) ⊙ x Wu_e) W2_e
 * aux = balance_coef · (E/(k·N)) · Σ_e count_e · mean_t p[t, e]      # = balance_coef at uniform routing
 * ```
 *
 * Gradients reach the router only through the selected experts' weights `c` (and the balance
 * loss); unselected experts get exactly zero gradient.
 *
 * Computation: training uses {@link maskedMixture} (every expert on every token, multiplied by
 * `c`, which is 0 for unselected experts: exact and simple, costs E·w hidden units per token) or,
 * with `train_compute = sparse`, {@link sparseMixture} (gather the rows of each expert; costs k·w;
 * on the native backend one op with its own gradient, lib/models/sparse_train.ts, bit-identical).
 * Evaluation and inference always use the sparse form (each expert runs only on its tokens),
 * except on webgpu, which cannot read the routing synchronously (see `canReadSync`): there both
 * training and inference use the masked form.
 *
 * ## Options (`model.ffn.<option>`)
 *
 * | option | values | default | meaning |
 * |---|---|---|---|
 * | `experts` | integer in [1, 1024] | 8 | E, experts per layer |
 * | `top_k` | integer in [1, experts] | 2 | k, experts per token |
 * | `expert_width` | integer ≥ 1 or null | null | w; null = `d_ff / experts` (the dense FFN split E ways: same total parameters) |
 * | `renormalize` | boolean | true | true: weights = softmax over the k selected logits (Mixtral); false: the full-softmax probabilities of the selected experts (Switch, DeepSeek-V2) |
 * | `balance_coef` | number in [0, 10] | 0.01 | coefficient of the load-balance loss (0 = off) |
 * | `train_compute` | `masked` \| `sparse` | `masked` | how training computes the mixture (same function, see above) |
 *
 * ## Parameters of one layer (relative to `layers.<i>.ffn.`)
 *
 * | name | shape | init | decay |
 * |---|---|---|---|
 * | `router` | `[d_model, E]` | N(0, init_std²) | no |
 * | `w13` | `[d_model, 2·E·w]`: gate columns of expert e at `e·w..(e+1)·w`, up columns at `E·w + e·w..` | N(0, init_std²) | yes |
 * | `w2` | `[E·w, d_model]`: expert e's rows `e·w..(e+1)·w` | N(0, (init_std/√(2·n_layers))²) | yes |
 *
 * With `experts·expert_width = d_ff` the `w13`/`w2` layout is exactly the dense FFN's.
 *
 * ## Upcycling from a dense FFN (`upcycleFromDense`, called by lib/models/upcycle.ts)
 *
 * With G = d_ff / w dense chunks (w must divide d_ff and G must divide E), expert e is chunk
 * `e mod G` of the dense FFN (gate and up columns, w2 rows), its w2 multiplied by G; the router
 * keeps its seeded init. So:
 * - **copy-upcycling** (`expert_width = d_ff`, G = 1): every expert is the dense FFN; with
 *   `renormalize = true` the upcycled layer equals the dense FFN for any router and any k.
 * - **split-upcycling** (`experts · expert_width = d_ff`, G = E): expert e is the e-th contiguous
 *   slice; with all experts active (k = E) and a uniform router (zero router weights) the layer
 *   equals the dense FFN (Σ_e (1/E)·E·o_e = Σ_e o_e). With k < E it computes (E/k)·Σ_selected o_e at
 *   a uniform router (the DSMoE n/k rescale).
 * - in between (1 < G < E): G chunks, each replicated E/G times.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ModelConfig } from "../../core/config.ts";
import { matmul } from "../../backends/ops.ts";
import {
  balanceLoss,
  canReadSync,
  concatColumns,
  type DenseFfnWeights,
  type DenseUpcycling,
  expertRunner,
  fixedActiveCost,
  maskedMixture,
  maskedSoftmax,
  resolvedOptions,
  sliceColumns,
  sparseMixture,
  subMatrix,
  topkMask,
  unknownOptions,
} from "../moe.ts";
import type { RoutedFfn, SparseCost } from "../sparse_metrics.ts";
import { sparseMixtureTrain, sparseTrainActive } from "../sparse_train.ts";
import type { FfnContext, FfnParams, ParamSpec } from "./types.ts";

/** The options as written in `model.ffn` (all optional; see the module doc for defaults). */
export interface TopkMoeOptions {
  kind: "topk_moe";
  /** E, experts per layer: an integer in [1, 1024]. Default 8. */
  experts?: number;
  /** k, experts per token: an integer in [1, experts]. Default 2. */
  top_k?: number;
  /** Expert width w (integer >= 1); null = d_ff / experts (the dense FFN split E ways). Default null. */
  expert_width?: number | null;
  /** true: softmax over the k selected logits (Mixtral); false: the full-softmax probabilities of the selected experts. Default true. */
  renormalize?: boolean;
  /** Coefficient of the load-balance loss, in [0, 10] (0 = off). Default 0.01. */
  balance_coef?: number;
  /** How training computes the mixture (same function). Default `masked`. */
  train_compute?: "masked" | "sparse";
}

/** Resolved options of one top-k MoE layer. */
export interface TopkMoeShape {
  experts: number;
  top_k: number;
  expert_width: number;
  renormalize: boolean;
  balance_coef: number;
  train_compute: "masked" | "sparse";
}

/** Defaults of the options (see the module doc). */
export const TOPK_MOE_DEFAULTS = {
  experts: 8,
  top_k: 2,
  expert_width: null,
  renormalize: true,
  balance_coef: 0.01,
  train_compute: "masked",
} as const;

const isInt = (v: unknown, lo: number, hi: number): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi;
const fmt = (v: unknown) => JSON.stringify(v);

function problems(cfg: ModelConfig): string[] {
  const f: Record<string, unknown> = { ...cfg.ffn }, e = unknownOptions(cfg, "topk_moe", TOPK_MOE_DEFAULTS);
  const E = f.experts ?? TOPK_MOE_DEFAULTS.experts;
  if (!isInt(E, 1, 1024)) e.push(`model.ffn.experts = ${fmt(E)} must be an integer in [1, 1024]`);
  const k = f.top_k ?? TOPK_MOE_DEFAULTS.top_k;
  if (!isInt(k, 1, isInt(E, 1, 1024) ? E : 1024)) {
    e.push(`model.ffn.top_k = ${fmt(k)} must be an integer in [1, model.ffn.experts = ${fmt(E)}]`);
  }
  const w = f.expert_width;
  if (w !== undefined && w !== null && !isInt(w, 1, 1 << 20)) {
    e.push(`model.ffn.expert_width = ${fmt(w)} must be a positive integer or null (= model.d_ff / experts)`);
  }
  if ((w === undefined || w === null) && isInt(E, 1, 1024) && cfg.d_ff % E !== 0) {
    e.push(
      `model.ffn.experts = ${E} must divide model.d_ff = ${cfg.d_ff} when model.ffn.expert_width is null ` +
        `(or set expert_width)`,
    );
  }
  if (f.renormalize !== undefined && typeof f.renormalize !== "boolean") {
    e.push(`model.ffn.renormalize = ${fmt(f.renormalize)} must be true or false`);
  }
  const c = f.balance_coef;
  if (c !== undefined && !(typeof c === "number" && c >= 0 && c <= 10)) {
    e.push(`model.ffn.balance_coef = ${fmt(c)} must be a number in [0, 10]`);
  }
  if (f.train_compute !== undefined && f.train_compute !== "masked" && f.train_compute !== "sparse") {
    e.push(`model.ffn.train_compute = ${fmt(f.train_compute)} is not one of: masked, sparse`);
  }
  return e;
}

/** Resolves the options (defaults applied); throws with every problem when they are invalid. */
export function topkMoeShape(cfg: ModelConfig): TopkMoeShape {
  const f = resolvedOptions(cfg, TOPK_MOE_DEFAULTS, { kind: "topk_moe", problems });
  return { ...f, expert_width: f.expert_width ?? cfg.d_ff / f.experts };
}

/** Router weights `c` `[N, E]` (0 for unselected experts), the full softmax and the selection mask. */
export function topkRouting(
  x: tf.Tensor2D,
  router: tf.Tensor,
  s: Pick<TopkMoeShape, "top_k" | "renormalize">,
): { coef: tf.Tensor2D; probs: tf.Tensor2D; mask: tf.Tensor2D } {
  const logits = matmul(x, router);
  const probs = tf.softmax(logits);
  const mask = topkMask(logits, s.top_k);
  const coef = s.renormalize ? maskedSoftmax(logits, mask) : tf.mul(probs, mask) as tf.Tensor2D;
  return { coef, probs, mask };
}

/** The layer's output with the given computation (exported for the equivalence tests). */
export function topkMoeForward(
  x: tf.Tensor2D,
  p: FfnParams,
  coef: tf.Tensor2D,
  compute: "masked" | "sparse",
  opts: { training?: boolean } = {},
): tf.Tensor2D {
  if (compute === "masked") return maskedMixture(x, p.w13, p.w2, coef);
  const E = coef.shape[1], d = p.w2.shape[1] as number;
  if (opts.training && sparseTrainActive()) {
    return sparseMixtureTrain(x, coef, { values: coef.dataSync(), w13: p.w13, w2: p.w2 }); // one op, the same bits
  }
  const run = expertRunner(p.w13, p.w2, E, { split: opts.training });
  return sparseMixture(x, coef, coef.dataSync(), run, { outDim: d });
}

function cost(cfg: ModelConfig): SparseCost {
  const s = topkMoeShape(cfg), d = cfg.d_model, E = s.experts, w = s.expert_width;
  return {
    experts: E,
    expert_params: 3 * d * w,
    expert_flops: 6 * d * w,
    fixed_params: d * E,
    fixed_flops: 2 * d * E,
    active_experts: s.top_k,
  };
}

/** Top-k MoE. */
export const variant: RoutedFfn & DenseUpcycling = {
  kind: "topk_moe",
  description: "top-k mixture of SwiGLU experts with a softmax router and a Switch/DeepSeek load-balance loss",
  defaults: TOPK_MOE_DEFAULTS,

  validate: problems,

  params(cfg: ModelConfig): ParamSpec[] {
    const s = topkMoeShape(cfg), d = cfg.d_model, H = s.experts * s.expert_width, std = cfg.init_std;
    return [
      { name: "router", shape: [d, s.experts], init: "normal", std, decay: false },
      { name: "w13", shape: [d, 2 * H], init: "normal", std, decay: true },
      { name: "w2", shape: [H, d], init: "normal", std: std / Math.sqrt(2 * cfg.n_layers), decay: true },
    ];
  },

  /** FLOPs: router plus the k active experts (what sparse inference computes). */
  ...fixedActiveCost(cost),

  apply(x: tf.Tensor2D, p: FfnParams, ctx: FfnContext): tf.Tensor2D {
    const s = topkMoeShape(ctx.cfg);
    const { coef, probs, mask } = topkRouting(x, p.router, s);
    if (ctx.training) {
      const lb = balanceLoss(probs, mask, s.top_k);
      if (s.balance_coef > 0) ctx.addAuxLoss(tf.mul(lb, s.balance_coef));
      ctx.addStat("balance_loss", lb);
    }
    ctx.capture?.("gate", coef); // routing weights, 0 = unselected (end-of-run analysis)
    const sparse = canReadSync() && (!ctx.training || s.train_compute === "sparse");
    return topkMoeForward(x, p, coef, sparse ? "sparse" : "masked", { training: ctx.training });
  },

  upcycleFromDense(cfg: ModelConfig, dense: DenseFfnWeights): Record<string, Float32Array> {
    const s = topkMoeShape(cfg), { d_model: d, d_ff: h } = dense, E = s.experts, w = s.expert_width;
    if (h % w !== 0 || E % (h / w) !== 0) {
      throw new Error(
        `cannot upcycle topk_moe from a dense FFN of width d_ff = ${h}: model.ffn.expert_width = ${w} must divide ` +
          `d_ff and model.ffn.experts = ${E} must be a multiple of d_ff / expert_width = ${h / w} ` +
          `(copy: expert_width = d_ff; split: experts · expert_width = d_ff)`,
      );
    }
    const G = h / w, chunk = (e: number) => e % G;
    const gate = [], up = [], down = [];
    for (let e = 0; e < E; e++) {
      gate.push({ data: sliceColumns(dense.w13, d, 2 * h, chunk(e) * w, w), cols: w });
      up.push({ data: sliceColumns(dense.w13, d, 2 * h, h + chunk(e) * w, w), cols: w });
      down.push(subMatrix(dense.w2, d, chunk(e) * w, w, 0, d, G));
    }
    const w2 = new Float32Array(E * w * d);
    down.forEach((m, e) => w2.set(m, e * w * d));
    return { w13: concatColumns([...gate, ...up], d), w2 };
  },
};
