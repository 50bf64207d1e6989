/**
 * The dense SwiGLU FFN of LLaMA: `w2( silu(x w1) * (x w3) )`, with w1 and w3 fused into one
 * matrix `w13 = [w1 | w3]` so the up-projection is a single matmul.
 *
 * | name | shape | init |
 * |---|---|---|
 * | `w13` | `[d_model, 2*d_ff]` (columns `0..d_ff` = w1 gate, `d_ff..2*d_ff` = w3 up) | N(0, init_std²) |
 * | `w2`  | `[d_ff, d_model]` | N(0, (init_std/√(2·n_layers))²) |
 *
 * Options: none besides `kind`.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ModelConfig } from "../../core/config.ts";
import { matmul, silu, splitLast } from "../../backends/ops.ts";
import { swiglu } from "../../backends/fused.ts";
import type { FfnVariant, ParamSpec } from "./types.ts";

/** The options as written in `model.ffn`: none besides `kind`. */
export interface DenseOptions {
  kind: "dense";
}

/** Dense SwiGLU. */
export const variant: FfnVariant = {
  kind: "dense",
  description: "dense SwiGLU FFN (LLaMA), hidden width model.d_ff",

  validate(cfg: ModelConfig): string[] {
    const errors: string[] = [];
    for (const key of Object.keys(cfg.ffn)) {
      if (key !== "kind") {
        errors.push(`model.ffn.${key} is not an option of ffn kind "dense" (it has none besides kind)`);
      }
    }
    return errors;
  },

  params(cfg: ModelConfig): ParamSpec[] {
    const { d_model: d, d_ff: h, init_std: std, n_layers: L } = cfg;
    return [
      { name: "w13", shape: [d, 2 * h], init: "normal", std, decay: true },
      { name: "w2", shape: [h, d], init: "normal", std: std / Math.sqrt(2 * L), decay: true },
    ];
  },

  paramCount(cfg: ModelConfig): number {
    return 3 * cfg.d_model * cfg.d_ff;
  },

  flopsPerToken(cfg: ModelConfig): number {
    // up: 2·d·2h, down: 2·h·d
    return 6 * cfg.d_model * cfg.d_ff;
  },

  apply(x: tf.Tensor2D, p, ctx): tf.Tensor2D {
    const ab = matmul(x, p.w13);
    if (!ctx.capture) return matmul(swiglu(ab), p.w2); // silu(gate) * up in one kernel where fused (lib/backends/fused.ts)
    const h = p.w2.shape[0];
    const [a, b] = splitLast(ab, [h, h]); // gate, up
    const act = silu(a), prod = tf.mul(act, b);
    if (ctx.capture) { // end-of-run analysis only (NSAR, histograms)
      ctx.capture("act", act as tf.Tensor2D);
      ctx.capture("prod", prod as tf.Tensor2D);
    }
    return matmul(prod, p.w2);
  },
};
