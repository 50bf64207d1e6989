/**
 * DSMoE (arXiv 2502.12455): the dense SwiGLU FFN partitioned along its hidden dimension into n
 * contiguous blocks ("experts"), each switched on per token by its own sigmoid gate above a
 * threshold τ. See /work/shared/research/dsmoe.md for the paper's equations and its ambiguities
 * (the ambiguous points are options here).
 *
 * ## Forward pass of one layer (`x` = the FFN input `[N, d_model]`)
 *
 * ```
 * o_i  = (SiLU(x W_i) ⊙ x U_i) V_i           # block i: gate/up columns and down rows i·B..(i+1)·B, B = d_ff/n
 * g    = sigmoid(x · gate)                   # [N, n], independent per block (no softmax, no top-k)
 * m    = g > τ                               # active blocks (computed outside autodiff)
 * G(g) = g · m                               # thresholded gate (Eq. 7)
 * k    = Σ_i m_i  (per token)                # variable number of active blocks, 0..n
 * y    = (n / max(k, 1)) · Σ_i G(g_i) · o_i   # Eq. 8 rescale (option), k = 0 gives y = 0
 * ```
 *
 * Σ_i o_i is exactly the dense FFN: the blocks are contiguous slices of w13/w2 stored in the
 * dense layout, so a DSMoE layer upcycled from a dense run has the same `w13`, `w2` (tested).
 *
 * **Straight-through estimator** (Eqs. 10–11, option `ste`): the backward pass treats G(g) as g
 * for every block (derivative 1), so the gate of an inactive block still learns whether turning it
 * on would help; without it, inactive gates get no gradient from the LM loss (the "Matthew
 * effect"). Expert weights get gradient only where their block is active (G = 0 otherwise) in
 * both cases. The STE needs every block's output, so **training computes all blocks** (masked:
 * `((SiLU(xW) ⊙ xU) ⊙ expand(c)) V`, one dense FFN with a per-block column weight c).
 * **Inference skips inactive blocks for real**: each block runs only on the tokens whose gate is
 * above τ (gather, compute, segment-sum; masked on webgpu, which cannot read the gates
 * synchronously). The activated parameters and FLOPs per token measured from the gates are
 * reported by lib/models/sparse_metrics.ts (the layer reports `G(g)` as its routing weights).
 *
 * **Sparsity loss** (Eqs. 18–19): `lambda · mean over tokens and blocks of G(g)`, added per layer
 * divided by n_layers (so the total is the mean over layers). σ > 0, so L1 = sum. Its gradient
 * reaches active gates only (as written, through G) or every gate (`sparsity_ste`, through the
 * STE value S).
 *
 * ## Options (`model.ffn.<option>`)
 *
 * | option | values | default | meaning |
 * |---|---|---|---|
 * | `experts` | integer in [1, 1024] dividing d_ff | 8 | n, blocks per layer |
 * | `tau` | number in (0, 1) | 0.5 | activation threshold τ on the sigmoid gate |
 * | `ste` | boolean | true | straight-through estimator for the gates (false: plain G in the backward) |
 * | `lambda` | number in [0, 100] | 1 | coefficient of the L1 sparsity loss (the paper adds it with weight 1) |
 * | `rescale` | boolean | true | multiply the output by n/k (Eq. 8) |
 * | `sparsity_ste` | boolean | false | the sparsity loss's gradient reaches every gate (through S) instead of active gates only (through G) |
 * | `gate_init_std` | number in (0, 1] or null | null | std of the gate init; null = model.init_std |
 * | `gate_bias` | number in [-10, 10] or null | null | null: no gate bias (the paper). A number b: a learnable per-block bias initialised to b (e.g. 2 starts every block at σ ≈ 0.88 > τ: a near-dense start; not in the paper) |
 * | `train_gates` | `threshold` \| `soft` | `threshold` | `threshold`: training uses the thresholded gates G(g) (with `ste`, `rescale`), as the paper's DSMoE. `soft`: the paper's Figure 2 ablation: training weights every block by its sigmoid, `y = Σ_i g_i·o_i` (no threshold, no STE; all n blocks active so the n/k rescale is 1), and the L1 loss is on g; evaluation still thresholds at τ (with `rescale` as set) |
 * | `eval_taus` | list of numbers in (0, 1), at most 32 | [] | thresholds at which the trained model is re-evaluated at the end of the run without retraining (the inference-time τ sweep); stored as `eval_tau_<τ>_val_loss`, `eval_tau_<τ>_experts_active`, `eval_tau_<τ>_params_active` (see `evalConfigs`) |
 *
 * ## Parameters of one layer (relative to `layers.<i>.ffn.`)
 *
 * | name | shape | init | decay |
 * |---|---|---|---|
 * | `w13` | `[d_model, 2·d_ff]` (dense layout: gate columns `0..d_ff`, up columns `d_ff..2·d_ff`; block i = columns `i·B..` and `d_ff + i·B..`) | N(0, init_std²) | yes |
 * | `w2` | `[d_ff, d_model]` (block i = rows `i·B..(i+1)·B`) | N(0, (init_std/√(2·n_layers))²) | yes |
 * | `gate` | `[d_model, n]` | N(0, gate_init_std²) | no |
 * | `gate_bias` | `[n]`, only when the option `gate_bias` is a number b; the logits add `b + gate_bias` (stored as the offset from b, so its zero init means bias b) | zeros | no |
 *
 * Training statistics (`ctx.addStat`, logged as `ffn.<name>`, mean over layers): `active_frac`
 * (fraction of blocks on), `no_expert_frac` (tokens with k = 0), `sparsity_loss` (without lambda).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ModelConfig } from "../../core/config.ts";
import { matmul } from "../../backends/ops.ts";
import {
  canReadSync,
  type DenseFfnWeights,
  type DenseUpcycling,
  expertRunner,
  maskedMixture,
  noGrad,
  resolvedOptions,
  sparseMixture,
  unknownOptions,
} from "../moe.ts";
import type { RoutedFfn, SparseCost } from "../sparse_metrics.ts";
import type { FfnContext, FfnParams, ParamSpec } from "./types.ts";

/** The options as written in `model.ffn` (all optional; see the module doc for defaults). */
export interface DsmoeOptions {
  kind: "dsmoe";
  /** n, blocks per layer: an integer in [1, 1024] dividing d_ff. Default 8. */
  experts?: number;
  /** Activation threshold τ on the sigmoid gate, in (0, 1). Default 0.5. */
  tau?: number;
  /** Straight-through estimator for the gates (false: plain G in the backward). Default true. */
  ste?: boolean;
  /** Coefficient of the L1 sparsity loss, in [0, 100] (the paper adds it with weight 1). Default 1. */
  lambda?: number;
  /** Multiply the output by n/k (Eq. 8). Default true. */
  rescale?: boolean;
  /** The sparsity loss's gradient reaches every gate (through S) instead of active gates only (through G). Default false. */
  sparsity_ste?: boolean;
  /** Std of the gate init, in (0, 1]; null = model.init_std. Default null. */
  gate_init_std?: number | null;
  /** null: no gate bias (the paper); a number b in [-10, 10]: a learnable per-block bias initialised to b. Default null. */
  gate_bias?: number | null;
  /**
   * How training gates the blocks: `threshold` (the paper's DSMoE: G(g) with `ste` and `rescale`) or `soft`
   * (its Figure 2 ablation: every block weighted by its sigmoid g, no threshold or STE, L1 on g; the threshold
   * τ is applied only at evaluation). Default `threshold`.
   */
  train_gates?: DsmoeTrainGates;
  /** Thresholds in (0, 1) at which the trained model is re-evaluated at the end of the run (no retraining). Default []. */
  eval_taus?: number[];
}

/** How training gates the blocks (see {@link DsmoeOptions.train_gates}). */
export type DsmoeTrainGates = "threshold" | "soft";

/** Resolved options of one DSMoE layer. */
export interface DsmoeShape {
  experts: number;
  tau: number;
  ste: boolean;
  lambda: number;
  rescale: boolean;
  sparsity_ste: boolean;
  gate_init_std: number;
  gate_bias: number | null;
  train_gates: DsmoeTrainGates;
  eval_taus: number[];
  /** Block width B = d_ff / experts. */
  block: number;
}

/** Defaults of the options (see the module doc). */
export const DSMOE_DEFAULTS = {
  experts: 8,
  tau: 0.5,
  ste: true,
  lambda: 1,
  rescale: true,
  sparsity_ste: false,
  gate_init_std: null,
  gate_bias: null,
  train_gates: "threshold",
  eval_taus: [] as number[],
} as const;

const fmt = (v: unknown) => JSON.stringify(v);
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function problems(cfg: ModelConfig): string[] {
  const f: Record<string, unknown> = { ...cfg.ffn }, e = unknownOptions(cfg, "dsmoe", DSMOE_DEFAULTS);
  const n = f.experts ?? DSMOE_DEFAULTS.experts;
  if (!(typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 1024)) {
    e.push(`model.ffn.experts = ${fmt(n)} must be an integer in [1, 1024]`);
  } else if (cfg.d_ff % n !== 0) {
    e.push(`model.ffn.experts = ${n} must divide model.d_ff = ${cfg.d_ff} (blocks are equal contiguous slices)`);
  }
  if (f.tau !== undefined && !(isNum(f.tau) && f.tau > 0 && f.tau < 1)) {
    e.push(`model.ffn.tau = ${fmt(f.tau)} must be a number in (0, 1) (a threshold on a sigmoid)`);
  }
  if (f.lambda !== undefined && !(isNum(f.lambda) && f.lambda >= 0 && f.lambda <= 100)) {
    e.push(`model.ffn.lambda = ${fmt(f.lambda)} must be a number in [0, 100]`);
  }
  for (const key of ["ste", "rescale", "sparsity_ste"]) {
    if (f[key] !== undefined && typeof f[key] !== "boolean") {
      e.push(`model.ffn.${key} = ${fmt(f[key])} must be true or false`);
    }
  }
  const g = f.gate_init_std;
  if (g !== undefined && g !== null && !(isNum(g) && g > 0 && g <= 1)) {
    e.push(`model.ffn.gate_init_std = ${fmt(g)} must be a number in (0, 1] or null (= model.init_std)`);
  }
  const b = f.gate_bias;
  if (b !== undefined && b !== null && !(isNum(b) && b >= -10 && b <= 10)) {
    e.push(`model.ffn.gate_bias = ${fmt(b)} must be a number in [-10, 10] or null (no bias)`);
  }
  if (f.train_gates !== undefined && f.train_gates !== "threshold" && f.train_gates !== "soft") {
    e.push(`model.ffn.train_gates = ${fmt(f.train_gates)} is not one of: threshold, soft`);
  }
  const ts = f.eval_taus;
  if (
    ts !== undefined &&
    !(Array.isArray(ts) && ts.length <= 32 && ts.every((t) => isNum(t) && t > 0 && t < 1) &&
      new Set(ts).size === ts.length)
  ) {
    e.push(`model.ffn.eval_taus = ${fmt(ts)} must be a list of at most 32 distinct numbers in (0, 1)`);
  }
  return e;
}

/** Resolves the options (defaults applied); throws with every problem when they are invalid. */
export function dsmoeShape(cfg: ModelConfig): DsmoeShape {
  const f = resolvedOptions(cfg, DSMOE_DEFAULTS, { kind: "dsmoe", problems });
  return {
    ...f,
    gate_init_std: f.gate_init_std ?? cfg.init_std,
    eval_taus: [...f.eval_taus],
    block: cfg.d_ff / f.experts,
  };
}

/**
 * `g · mask` in the forward pass; in the backward pass `dy` (straight through: derivative 1 for
 * every entry) when `straight`, else `dy · mask` (the true derivative of G away from τ).
 */
export function thresholded(g: tf.Tensor2D, mask: tf.Tensor2D, straight: boolean): tf.Tensor2D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [gi, mi, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([mi]);
    return {
      value: tf.mul(gi, mi),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        straight ? tf.clone(dy) : tf.mul(dy, saved[0]),
        tf.zerosLike(saved[0]),
      ],
    };
  });
  return f(g, mask) as tf.Tensor2D;
}

/** Gates of one layer: the sigmoid `g`, the active mask `m`, and the output multipliers `coef = G(g)·n/k`. */
export function dsmoeGates(
  x: tf.Tensor2D,
  p: FfnParams,
  s: Pick<DsmoeShape, "experts" | "tau" | "ste" | "rescale" | "gate_bias">,
): { g: tf.Tensor2D; mask: tf.Tensor2D; thresholdedGate: tf.Tensor2D; coef: tf.Tensor2D } {
  const z = matmul(x, p.gate);
  const g = tf.sigmoid(s.gate_bias === null ? z : tf.add(z, tf.add(p.gate_bias, s.gate_bias))) as tf.Tensor2D;
  // 1 where g > τ (step(g - τ): exact for floats, and float32 data on every backend, unlike cast(bool)).
  const mask = noGrad([g], (v) => tf.step(tf.sub(v, s.tau))) as tf.Tensor2D;
  const G = thresholded(g, mask, s.ste);
  // n / max(k, 1): a count, no gradient.
  const scale = () => noGrad([mask], (m) => tf.div(s.experts, tf.maximum(tf.sum(m, -1, true), 1)));
  const coef = s.rescale ? tf.mul(G, scale()) as tf.Tensor2D : G;
  return { g, mask, thresholdedGate: G, coef };
}

/** The layer output from the multipliers, all blocks (masked) or active blocks only (sparse). */
export function dsmoeForward(
  x: tf.Tensor2D,
  p: FfnParams,
  coef: tf.Tensor2D,
  compute: "masked" | "sparse",
): tf.Tensor2D {
  if (compute === "masked") return maskedMixture(x, p.w13, p.w2, coef);
  const n = coef.shape[1], d = p.w2.shape[1] as number;
  return sparseMixture(x, coef, coef.dataSync(), expertRunner(p.w13, p.w2, n), { outDim: d });
}

/**
 * The n contiguous blocks of a dense SwiGLU FFN (`w13` `[d, 2h]`, `w2` `[h, d]`): block i has
 * `w13_i = [gate cols i·B..(i+1)·B | up cols h + i·B..]` `[d, 2B]` and `w2_i` = rows `i·B..(i+1)·B`.
 * Σ_i FFN_i(x) = FFN(x) exactly in real arithmetic (tested).
 */
export function partitionDense(dense: DenseFfnWeights, n: number): { w13: Float32Array; w2: Float32Array }[] {
  const { d_model: d, d_ff: h } = dense;
  if (!(Number.isInteger(n) && n >= 1 && h % n === 0)) {
    throw new Error(`partitionDense: ${n} blocks must divide d_ff = ${h}`);
  }
  const B = h / n;
  return Array.from({ length: n }, (_, i) => {
    const w13 = new Float32Array(d * 2 * B);
    for (let r = 0; r < d; r++) {
      w13.set(dense.w13.subarray(r * 2 * h + i * B, r * 2 * h + (i + 1) * B), r * 2 * B);
      w13.set(dense.w13.subarray(r * 2 * h + h + i * B, r * 2 * h + h + (i + 1) * B), r * 2 * B + B);
    }
    return { w13, w2: dense.w2.slice(i * B * d, (i + 1) * B * d) };
  });
}

function cost(cfg: ModelConfig): SparseCost {
  const s = dsmoeShape(cfg), d = cfg.d_model;
  return {
    experts: s.experts,
    expert_params: 3 * d * s.block,
    expert_flops: 6 * d * s.block,
    fixed_params: d * s.experts + (s.gate_bias === null ? 0 : s.experts),
    fixed_flops: 2 * d * s.experts,
    active_experts: null,
  };
}

/** DSMoE. */
export const variant: RoutedFfn & DenseUpcycling = {
  kind: "dsmoe",
  description: "DSMoE: dense SwiGLU FFN split into n blocks, each switched by a thresholded sigmoid gate (STE, L1)",
  defaults: DSMOE_DEFAULTS,

  validate: problems,

  params(cfg: ModelConfig): ParamSpec[] {
    const s = dsmoeShape(cfg), { d_model: d, d_ff: h, init_std: std, n_layers: L } = cfg;
    return [
      { name: "w13", shape: [d, 2 * h], init: "normal", std, decay: true },
      { name: "w2", shape: [h, d], init: "normal", std: std / Math.sqrt(2 * L), decay: true },
      { name: "gate", shape: [d, s.experts], init: "normal", std: s.gate_init_std, decay: false },
      ...(s.gate_bias === null
        ? []
        : [{ name: "gate_bias", shape: [s.experts], init: "zeros" as const, decay: false }]),
    ];
  },

  paramCount(cfg: ModelConfig): number {
    const c = cost(cfg);
    return c.fixed_params + c.experts * c.expert_params;
  },

  /** Upper bound: gate plus all n blocks (the measured value is in sparse_metrics' `flops_per_token_active`). */
  flopsPerToken(cfg: ModelConfig): number {
    const c = cost(cfg);
    return c.fixed_flops + c.experts * c.expert_flops;
  },

  sparseCost: cost,

  /** One config per `eval_taus` entry τ (prefix `eval_tau_<τ>`): the same weights thresholded at τ. */
  evalConfigs(cfg: ModelConfig): Record<string, ModelConfig> {
    const s = dsmoeShape(cfg);
    return Object.fromEntries(
      s.eval_taus.map((
        tau,
      ) => [`eval_tau_${tau}`, { ...cfg, ffn: { ...cfg.ffn, tau, eval_taus: [] } as DsmoeOptions }]),
    );
  },

  apply(x: tf.Tensor2D, p: FfnParams, ctx: FfnContext): tf.Tensor2D {
    const s = dsmoeShape(ctx.cfg);
    const { g, mask, thresholdedGate, coef } = dsmoeGates(x, p, s);
    if (ctx.training && s.train_gates === "soft") {
      // Figure 2 ablation: every block weighted by its sigmoid, L1 on g; τ only counts the blocks above it.
      const sparsity = tf.mean(g);
      if (s.lambda > 0) ctx.addAuxLoss(tf.mul(sparsity, s.lambda / ctx.cfg.n_layers));
      ctx.addStat("sparsity_loss", sparsity as tf.Scalar);
      ctx.addStat("active_frac", tf.mean(mask));
      return dsmoeForward(x, p, g, "masked");
    }
    if (ctx.training) {
      // L1 of the thresholded gates, mean over tokens and blocks; per layer / n_layers (Eqs. 18-19).
      const sparsity = tf.mean(s.sparsity_ste === s.ste ? thresholdedGate : thresholded(g, mask, s.sparsity_ste));
      if (s.lambda > 0) ctx.addAuxLoss(tf.mul(sparsity, s.lambda / ctx.cfg.n_layers));
      ctx.addStat("sparsity_loss", sparsity as tf.Scalar);
      ctx.addStat("active_frac", tf.mean(mask));
      ctx.addStat("no_expert_frac", tf.mean(tf.step(tf.sub(0.5, tf.sum(mask, -1))))); // k = 0
    }
    ctx.capture?.("gate", thresholdedGate); // G(g): 0 = block skipped (end-of-run analysis)
    return dsmoeForward(x, p, coef, !ctx.training && canReadSync() ? "sparse" : "masked");
  },

  /** w13 and w2 are the dense FFN's (the blocks are views of them); the gate keeps its seeded init. */
  upcycleFromDense(cfg: ModelConfig, dense: DenseFfnWeights): Record<string, Float32Array> {
    if (dense.d_ff !== cfg.d_ff || dense.d_model !== cfg.d_model) {
      throw new Error(
        `cannot upcycle dsmoe: dense FFN is [${dense.d_model}, ${dense.d_ff}], the model needs [${cfg.d_model}, ${cfg.d_ff}]`,
      );
    }
    return { w13: dense.w13.slice(), w2: dense.w2.slice() };
  },
};
