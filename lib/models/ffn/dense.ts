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
import type { ModelConfig } from "../../experiment/config.ts";
import { matmul, silu, splitLast } from "../../backends/ops.ts";
import type { FfnVariant, ParamSpec } from "./types.ts";

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

  apply(x: tf.Tensor2D, p): tf.Tensor2D {
    const h = p.w2.shape[0];
    const [a, b] = splitLast(matmul(x, p.w13), [h, h]); // gate, up
    return matmul(tf.mul(silu(a), b), p.w2);
  },
};
