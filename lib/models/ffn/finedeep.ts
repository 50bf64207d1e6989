/**
 * Finedeep (arXiv 2502.12928): the dense SwiGLU FFN of width `d_ff` split into M sequential
 * sub-layers of K fine-grained SwiGLU experts each (expert width E ≈ d_ff/(M·K)). Every expert runs
 * for every token; a router only weights the experts' outputs. The paper's body was not available:
 * see /work/shared/research/finedeep.md for what is verified and what is reconstructed, which is
 * why the ambiguous parts are options.
 *
 * ## Forward pass of one FFN block (residual stream `h`, the transformer passes `x = norm2(h)`)
 *
 * ```
 * s_0 = h
 * for m = 0..M-1:
 *   x_m = (m == 0) ? x                      # the layer's own pre-FFN norm (with its gain)
 *       : rmsnorm in {pre, both} ? RMSNorm(s_m) # gainless: a gain before W13 is redundant (diag(g)·W13)
 *       : s_m                                   # rmsnorm = post: no pre-norm on inner sub-layers
 *   [a | b] = x_m · W13_m                   # all K experts' gate and up columns in ONE matmul
 *   p = SiLU(a) ⊙ b                          # [N, K·E]; expert k owns columns k·E..(k+1)·E
 *   o_k = p_k · W2_k                          # expert outputs (never materialised, see below)
 *   g = norm_fn(score)                        # [N, K] gates
 *   y_m = Σ_k g_k · o_k = (p ⊙ expand(g)) · W2_m   # ONE dense down-projection
 *   y_m = rmsnorm in {post, both} ? RMSNorm(y_m) ⊙ post_gain_m : y_m
 *   s_{m+1} = s_m + y_m                       # residual per sub-layer
 * return Σ_m y_m                              # the transformer adds it to h, giving s_M
 * ```
 *
 * Output-guided scores use the exact rewrite `r_k · (p_k W2_k) = p_k · (W2_k r_k)`
 * (compute.md §5): `u_k = W2_k r_k` costs K·E·d multiply-adds per forward pass (not per token),
 * then the logits are per-expert dot products `p_k · u_k`, and the gated sum is one dense matmul.
 * The K expert outputs are never formed. `finedeep_test.ts` checks this against the naive form.
 *
 * Speed (issue 6 part 4: Finedeep within 1.1x of its dense twin's step time). The default form
 * (output-guided sigmoid gates, per-expert routers, `rmsnorm = pre`) runs as one fused op per block
 * where the backend has it (`finedeepBlock` in lib/backends/fused.ts; native, wasm and webgpu), which
 * does the loop above with the residual add, norm, SwiGLU and gates fused into two passes per
 * sub-layer each way (native: a block of rows at a time through all sub-layers). Elsewhere (cpu, the
 * other options) the loop below runs as tfjs ops, with the gates fused where the backend has
 * `FlExpertGate` (native, wasm). The analysis pass (`ctx.capture`) always takes the loop.
 *
 * ## Options (`model.ffn.<option>`, all part of the run hash because they are config)
 *
 * | option | values | default | meaning |
 * |---|---|---|---|
 * | `m` | integer ≥ 1 | 4 | sub-layers (depth) |
 * | `k` | integer ≥ 1 | 4 | experts per sub-layer (width) |
 * | `score` | `output` \| `input` | `output` | gate logit from the expert's output `r_k·o_k` (the paper's "output-guided"), or from the sub-layer input `r_k·x_m` (a standard MoE gate) |
 * | `norm_fn` | `sigmoid` \| `softmax` \| `none` | `sigmoid` | gate normalisation: independent sigmoids (the paper), softmax over the K experts, or no gate (plain sum; no router parameters, `score`/`router` ignored) |
 * | `router` | `expert` \| `sublayer` | `expert` | one router vector per expert, or one per sub-layer shared by its K experts (with `score = input` this gives one gate per sub-layer) |
 * | `rmsnorm` | `pre` \| `post` \| `both` | `pre` | pre-norm on each sub-layer input, a norm on the gated sum before the residual add, or both |
 * | `gate_bias` | number in [-10, 10] or null | null | null: no gate bias, so the zero-initialised routers start every gate at σ(0) = 0.5 (each sub-layer's output starts halved). A number b (sigmoid gates only): a learnable bias per gate `sub<m>.gate_bias`, stored as the offset from b (zero init means bias b), so gates start at σ(b) (b = 3: ≈ 0.95, blocks start almost un-halved). Not in the paper (its init is unknown) |
 * | `expert_width` | integer ≥ 1 or null | null | expert width E; null picks the integer E whose FFN parameter count (experts + routers + norms) is closest to the dense FFN's `3·d_model·d_ff` (this is exactly `d_ff/(M·K)` when M·K divides d_ff and only per-expert routers are added) |
 *
 * Defaults follow the paper's stated design (output-guided sigmoid routing, RMSNorm residuals read
 * as per-sub-layer pre-norm) and the balanced 4×4 point of the M·K = 16 line. With
 * `m = 1, k = 1, norm_fn = none, rmsnorm = pre` the block is the dense SwiGLU FFN: same parameter
 * shapes (`sub0.w13`, `sub0.w2` = dense `w13`, `w2`; the only pre-norm is the layer's own), same
 * ops, bit-identical output (tested).
 *
 * ## Parameters of one layer (names relative to `layers.<i>.ffn.`)
 *
 * | name | shape | init | decay |
 * |---|---|---|---|
 * | `sub<m>.w13` | `[d_model, 2·K·E]` (columns `0..K·E` = gate of experts 0..K-1 in order, then up) | N(0, init_std²) | yes |
 * | `sub<m>.w2` | `[K·E, d_model]` | N(0, (init_std/√(n_layers·(1+M)))²) — one residual add per sub-layer, as GPT-2 scales by the number of adds; equals dense's at M = 1 | yes |
 * | `sub<m>.router` | `[K, d_model]` (`router = expert`) or `[1, d_model]` (`sublayer`); absent for `norm_fn = none` | zeros (all gates start equal: 0.5 or 1/K) | no |
 * | `sub<m>.post_norm` | `[d_model]`, only for `rmsnorm = post \| both` | ones | no |
 * | `sub<m>.gate_bias` | `[gates]`, only when `gate_bias` is a number b (the logits add `b + gate_bias`) | zeros | no |
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ModelConfig } from "../../core/config.ts";
import { matmul, silu, splitLast } from "../../backends/ops.ts";
import { expertGate, finedeepBlock, rmsnorm as fusedRmsnorm, swiglu } from "../../backends/fused.ts";
import type { FfnContext, FfnParams, FfnVariant, ParamSpec } from "./types.ts";

/** Routing score source. */
export type FinedeepScore = "output" | "input";
/** Gate normalisation. */
export type FinedeepNorm = "sigmoid" | "softmax" | "none";
/** Router form. */
export type FinedeepRouter = "expert" | "sublayer";
/** RMSNorm placement. */
export type FinedeepRmsnorm = "pre" | "post" | "both";

/** The options as written in `model.ffn` (all optional; see the module doc for defaults). */
export interface FinedeepOptions {
  kind: "finedeep";
  /** Sub-layers (depth M), integer >= 1. Default 4. */
  m?: number;
  /** Experts per sub-layer (width K), integer >= 1. Default 4. */
  k?: number;
  /** Gate logit from the expert's output `r_k·o_k` (`output`, the paper's "output-guided") or from the sub-layer input `r_k·x_m` (`input`). Default `output`. */
  score?: FinedeepScore;
  /** Gate normalisation: independent sigmoids (the paper), softmax over the K experts, or `none` (plain sum, no router). Default `sigmoid`. */
  norm_fn?: FinedeepNorm;
  /** One router vector per expert (`expert`) or one per sub-layer shared by its K experts (`sublayer`). Default `expert`. */
  router?: FinedeepRouter;
  /** RMSNorm placement: pre-norm on each sub-layer input, a norm on the gated sum (`post`), or `both`. Default `pre`. */
  rmsnorm?: FinedeepRmsnorm;
  /** Expert width E (integer >= 1); null picks the E whose FFN parameters are closest to the dense FFN's. Default null. */
  expert_width?: number | null;
  /**
   * null: no gate bias (gates start at σ(0) = 0.5 with the zero-initialised routers). A number b in [-10, 10]
   * (sigmoid gates only): a learnable bias per gate initialised to b, so gates start at σ(b). Default null.
   */
  gate_bias?: number | null;
}

/** Resolved options and derived sizes of one Finedeep block. */
export interface FinedeepShape {
  m: number;
  k: number;
  score: FinedeepScore;
  norm_fn: FinedeepNorm;
  router: FinedeepRouter;
  rmsnorm: FinedeepRmsnorm;
  /** Initial gate bias b, or null (no bias). */
  gate_bias: number | null;
  /** Expert width E. */
  expert_width: number;
  /** Hidden width of one sub-layer, K·E. */
  sublayer_width: number;
  /** Total hidden units M·K·E (the pooled unit count of the NSAR metrics). */
  hidden: number;
  /** Router vectors per sub-layer (K, 1, or 0 for `none`). */
  router_rows: number;
  /** Gate columns per sub-layer: K, or 1 for an input-guided per-sub-layer router, 0 for `none`. */
  gates: number;
}

/** Defaults of the options (documented in the module doc). */
export const FINEDEEP_DEFAULTS = {
  m: 4,
  k: 4,
  score: "output",
  norm_fn: "sigmoid",
  router: "expert",
  rmsnorm: "pre",
  expert_width: null,
  gate_bias: null,
} as const;

const OPTIONS = ["kind", "m", "k", "score", "norm_fn", "router", "rmsnorm", "expert_width", "gate_bias"];
const ENUMS: Record<string, readonly string[]> = {
  score: ["output", "input"],
  norm_fn: ["sigmoid", "softmax", "none"],
  router: ["expert", "sublayer"],
  rmsnorm: ["pre", "post", "both"],
};

const isPosInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v >= 1;

/** Parameters of one block besides the experts (routers, post-norm gains, gate biases). */
function overheadParams(d: number, s: Omit<FinedeepShape, "expert_width" | "sublayer_width" | "hidden">): number {
  const post = s.rmsnorm === "pre" ? 0 : d;
  return s.m * (s.router_rows * d + post + (s.gate_bias === null ? 0 : s.gates));
}

/** Problems with the options (empty when valid); each names the field, the value and the fix. */
function problems(cfg: ModelConfig): string[] {
  const f: Record<string, unknown> = { ...cfg.ffn }, e: string[] = [];
  for (const key of Object.keys(f)) {
    if (!OPTIONS.includes(key)) {
      e.push(`model.ffn.${key} is not an option of ffn kind "finedeep" (options: ${OPTIONS.slice(1).join(", ")})`);
    }
  }
  for (const key of ["m", "k"]) {
    if (f[key] !== undefined && !(isPosInt(f[key]) && (f[key] as number) <= 1024)) {
      e.push(`model.ffn.${key} = ${JSON.stringify(f[key])} must be an integer in [1, 1024]`);
    }
  }
  for (const [key, values] of Object.entries(ENUMS)) {
    if (f[key] !== undefined && !values.includes(f[key] as string)) {
      e.push(`model.ffn.${key} = ${JSON.stringify(f[key])} is not one of: ${values.join(", ")}`);
    }
  }
  const w = f.expert_width;
  if (w !== undefined && w !== null && !isPosInt(w)) {
    e.push(`model.ffn.expert_width = ${JSON.stringify(w)} must be a positive integer or null (auto)`);
  }
  const b = f.gate_bias;
  if (b !== undefined && b !== null) {
    if (!(typeof b === "number" && b >= -10 && b <= 10)) {
      e.push(`model.ffn.gate_bias = ${JSON.stringify(b)} must be a number in [-10, 10] or null (no bias)`);
    } else if ((f.norm_fn ?? FINEDEEP_DEFAULTS.norm_fn) !== "sigmoid") {
      e.push(
        `model.ffn.gate_bias = ${b} needs model.ffn.norm_fn = "sigmoid" (a bias only sets where sigmoid gates start)`,
      );
    }
  }
  return e;
}

/**
 * Resolves the options of `cfg.ffn` (defaults applied) and the derived sizes. Throws with every
 * problem when the options are invalid (see {@link variant}.validate for the messages).
 */
export function finedeepShape(cfg: ModelConfig): FinedeepShape {
  const e = problems(cfg);
  if (e.length) throw new Error(`invalid finedeep options:\n  ${e.join("\n  ")}`);
  const f = { ...FINEDEEP_DEFAULTS, ...(cfg.ffn as Partial<FinedeepOptions>) };
  const { m, k, score, norm_fn, router, rmsnorm, gate_bias } = f;
  const router_rows = norm_fn === "none" ? 0 : router === "expert" ? k : 1;
  const gates = norm_fn === "none" ? 0 : score === "input" && router === "sublayer" ? 1 : k;
  const d = cfg.d_model;
  const base = { m, k, score, norm_fn, router, rmsnorm, gate_bias, router_rows, gates };
  // E whose parameter count 3·d·M·K·E + overhead is closest to the dense FFN's 3·d·d_ff.
  const auto = Math.round((3 * d * cfg.d_ff - overheadParams(d, base)) / (3 * d * m * k));
  const expert_width = f.expert_width ?? Math.max(1, auto);
  return { ...base, expert_width, sublayer_width: k * expert_width, hidden: m * k * expert_width };
}

/** RMSNorm without gain over the last axis (one fused kernel where the backend has it). */
function rmsnorm(x: tf.Tensor2D, eps: number): tf.Tensor2D {
  return fusedRmsnorm(x, null, eps);
}

/** `u_k = W2_k r_k` for `rows` routers over the row blocks of w2 `[H, d]`: `[rows, H/rows]`. */
function expertU(w2: tf.Tensor, r: tf.Tensor, rows: number): tf.Tensor2D {
  const [H, d] = w2.shape as [number, number];
  return tf.sum(tf.mul(tf.reshape(w2, [rows, H / rows, d]), tf.reshape(r, [rows, 1, d])), -1) as tf.Tensor2D;
}

/** Gate logits `[N, gates]` of one sub-layer (see the module doc). */
function gateLogits(s: FinedeepShape, xm: tf.Tensor2D, prod: tf.Tensor2D, w2: tf.Tensor, r: tf.Tensor): tf.Tensor2D {
  const [N, H] = prod.shape;
  if (s.score === "input") return matmul(xm, r, false, true); // r_k · x_m
  // Output-guided, exact rewrite: u_k = W2_k r_k, logit_k = p_k · u_k. Per-sub-layer routers use one r for all k.
  const u = expertU(w2, r, s.router_rows);
  const pu = tf.mul(prod, tf.reshape(u, [1, H]));
  return tf.sum(tf.reshape(pu, [N, s.k, s.expert_width]), -1) as tf.Tensor2D;
}

/** The default gate form, which has fused kernels: output-guided sigmoid gates, one router per expert, no bias. */
function perExpertOutputSigmoid(s: FinedeepShape): boolean {
  return s.score === "output" && s.norm_fn === "sigmoid" && s.router_rows === s.k && s.gate_bias === null;
}

/** One sub-layer: `x_m -> y_m` (before the optional post-norm). */
function sublayer(
  s: FinedeepShape,
  xm: tf.Tensor2D,
  p: FfnParams,
  index: number,
  ctx: FfnContext,
): tf.Tensor2D {
  const pre = `sub${index}.`, H = s.sublayer_width;
  const w2 = p[`${pre}w2`];
  const ab = matmul(xm, p[`${pre}w13`]); // [gate | up] of all K experts
  let prod: tf.Tensor2D;
  if (!ctx.capture) prod = swiglu(ab); // silu(gate) * up, one kernel where fused (as dense.ts)
  else { // end-of-run analysis: the same values, with SiLU(gate) exposed
    const [a, b] = splitLast(ab, [H, H]);
    const act = silu(a) as tf.Tensor2D;
    prod = tf.mul(act, b);
    ctx.capture("act", act, index);
    ctx.capture("prod", prod, index);
  }
  if (s.norm_fn === "none") return matmul(prod, w2);
  if (!ctx.capture && perExpertOutputSigmoid(s)) {
    // The default form without the fused block (cpu; post/both norms): gate logits, sigmoid and
    // gating in one kernel where the backend has FlExpertGate, then one dense down-projection.
    return matmul(expertGate(prod, expertU(w2, p[`${pre}router`], s.k), s.k), w2);
  }
  const z = gateLogits(s, xm, prod, w2, p[`${pre}router`]);
  const logits = s.gate_bias === null ? z : tf.add(z, tf.add(p[`${pre}gate_bias`], s.gate_bias)) as tf.Tensor2D;
  const g = (s.norm_fn === "sigmoid" ? tf.sigmoid(logits) : tf.softmax(logits)) as tf.Tensor2D;
  ctx.capture?.("gate", g, index);
  const N = prod.shape[0];
  const gated = s.gates === 1
    ? tf.mul(prod, g) // one gate per token for the whole sub-layer
    : tf.reshape(tf.mul(tf.reshape(prod, [N, s.k, s.expert_width]), tf.reshape(g, [N, s.k, 1])), [N, H]);
  return matmul(gated, w2); // = Σ_k g_k o_k, one dense down-projection
}

/** Finedeep: M sub-layers × K fine-grained experts with output-guided sigmoid routing. */
export const variant: FfnVariant = {
  kind: "finedeep",
  description: "Finedeep: M sequential sub-layers of K fine-grained SwiGLU experts, all active, router-weighted",
  defaults: FINEDEEP_DEFAULTS,

  validate(cfg: ModelConfig): string[] {
    const e = problems(cfg);
    if (e.length) return e;
    const s = finedeepShape(cfg);
    const f: Record<string, unknown> = { ...cfg.ffn };
    if (f.expert_width == null && cfg.d_ff < s.m * s.k) {
      e.push(
        `model.d_ff = ${cfg.d_ff} is smaller than model.ffn.m × model.ffn.k = ${s.m * s.k}: ` +
          `every expert needs at least one hidden unit (raise d_ff or lower m, k)`,
      );
    }
    if (s.norm_fn === "softmax" && s.gates === 1) {
      e.push(
        s.k === 1
          ? `model.ffn.norm_fn = "softmax" with model.ffn.k = 1 normalises over a single expert: every gate is 1 ` +
            `and the router learns nothing; use norm_fn = "sigmoid" or "none"`
          : `model.ffn.norm_fn = "softmax" with score = "input" and router = "sublayer" has one logit per ` +
            `sub-layer: every gate is 1; use router = "expert" or norm_fn = "sigmoid"`,
      );
    }
    return e;
  },

  params(cfg: ModelConfig): ParamSpec[] {
    const s = finedeepShape(cfg), { d_model: d, init_std: std, n_layers: L } = cfg;
    const out: ParamSpec[] = [];
    for (let m = 0; m < s.m; m++) {
      out.push({ name: `sub${m}.w13`, shape: [d, 2 * s.sublayer_width], init: "normal", std, decay: true });
      out.push({
        name: `sub${m}.w2`,
        shape: [s.sublayer_width, d],
        init: "normal",
        std: std / Math.sqrt(L * (1 + s.m)),
        decay: true,
      });
      if (s.router_rows > 0) {
        out.push({ name: `sub${m}.router`, shape: [s.router_rows, d], init: "zeros", decay: false });
      }
      if (s.rmsnorm !== "pre") out.push({ name: `sub${m}.post_norm`, shape: [d], init: "ones", decay: false });
      if (s.gate_bias !== null) out.push({ name: `sub${m}.gate_bias`, shape: [s.gates], init: "zeros", decay: false });
    }
    return out;
  },

  paramCount(cfg: ModelConfig): number {
    const s = finedeepShape(cfg), d = cfg.d_model;
    return 3 * d * s.hidden + overheadParams(d, s);
  },

  flopsPerToken(cfg: ModelConfig): number {
    // Experts: 2·d·2H (up) + 2·H·d (down) per sub-layer = 6·d·(M·K·E). Gate logits: output-guided
    // 2·K·E per sub-layer (p_k·u_k dot products); input-guided 2·d·(router rows). u_k = W2_k r_k is
    // computed once per forward pass, not per token, and is not counted (as norms and activations).
    const s = finedeepShape(cfg), d = cfg.d_model;
    const gate = s.norm_fn === "none" ? 0 : s.score === "output" ? 2 * s.sublayer_width : 2 * d * s.router_rows;
    return 6 * d * s.hidden + s.m * gate;
  },

  apply(x: tf.Tensor2D, p: FfnParams, ctx: FfnContext): tf.Tensor2D {
    const s = finedeepShape(ctx.cfg), eps = ctx.cfg.norm_eps;
    if (s.m > 1 && !ctx.residual) {
      throw new Error("finedeep with model.ffn.m > 1 needs ctx.residual (the block's residual stream)");
    }
    if (!ctx.capture && perExpertOutputSigmoid(s) && s.rmsnorm === "pre") {
      // The default form as one fused kernel each way where the backend has it (native, wasm): the same math
      // as the loop below, with its small element-wise passes fused (issue 6 part 4).
      const subs = Array.from({ length: s.m }, (_, m) => ({
        w13: p[`sub${m}.w13`],
        w2: p[`sub${m}.w2`],
        router: p[`sub${m}.router`],
      }));
      const fused = finedeepBlock(x, ctx.residual ?? null, subs, { k: s.k, eps });
      if (fused) return fused;
    }
    const post = s.rmsnorm !== "pre", preNorm = s.rmsnorm !== "post";
    const ys: tf.Tensor2D[] = [];
    let stream = ctx.residual ?? x; // s_m
    for (let m = 0; m < s.m; m++) {
      if (m > 0) stream = tf.add(stream, ys[m - 1]);
      const xm = m === 0 ? x : preNorm ? rmsnorm(stream, eps) : stream;
      let y = sublayer(s, xm, p, m, ctx);
      if (post) y = tf.mul(rmsnorm(y, eps), p[`sub${m}.post_norm`]);
      ys.push(y);
    }
    return ys.length === 1 ? ys[0] : tf.addN(ys);
  },
};
