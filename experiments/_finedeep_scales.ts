/**
 * Presets shared by the Finedeep experiments (ablation-mk, routing, nsar, finedeep-arms, finedeep-vs-dense):
 * the default scale's data, model and schedule ({@link finedeepDefault}, {@link FINEDEEP_TRAIN}), the
 * `tiny` (tests) and `gpu` (schedule from `_gpu.ts`) scales, and the headline Finedeep FFN
 * ({@link finedeepFfn}). Only d_ff differs between the experiments (each picks the d_ff that keeps its
 * Finedeep variants within the parameter budget), so it is the argument. (The leading `_` keeps this helper
 * out of the experiment list.)
 */
import type { ExperimentSpec, FinedeepOptions } from "../lib/experiment/mod.ts";
import { DENSE_TRAIN } from "./_dense.ts";
import { GPU_TRAIN } from "./_gpu.ts";

/** The default scale's schedule: 150 steps × 16 × 64 tokens (dense-baseline's, checkpoints every 75). */
export const FINEDEEP_TRAIN = { ...DENSE_TRAIN, checkpoint_every: 75 };

/**
 * The default scale's seeds, data (gutenberg), dense model (d_model 64, 4 layers, 4 heads, seq 64, the
 * given d_ff) and {@link FINEDEEP_TRAIN}; a variant makes it Finedeep.
 */
export function finedeepDefault(d_ff: number, seeds = [0, 1, 2]): Pick<
  ExperimentSpec,
  "seeds" | "data" | "model" | "train"
> {
  return {
    seeds,
    data: { dataset: "gutenberg" },
    model: { d_model: 64, n_layers: 4, n_heads: 4, d_ff, seq_len: 64, ffn: { kind: "dense" } },
    train: FINEDEEP_TRAIN,
  };
}

/** The headline Finedeep FFN (4 sub-layers x 4 experts, output-guided sigmoid gates, one router per expert, pre-norm) with `o` on top. */
export function finedeepFfn(o: Partial<FinedeepOptions> = {}): FinedeepOptions {
  return { kind: "finedeep", m: 4, k: 4, score: "output", norm_fn: "sigmoid", router: "expert", rmsnorm: "pre", ...o };
}

/** The `tiny` and `gpu` presets with the given d_ff at each scale. */
export function finedeepScales(dff: { tiny: number; gpu: number }): NonNullable<ExperimentSpec["scales"]> {
  return {
    tiny: {
      seeds: [0, 1],
      data: { max_tokens: 200_000 },
      model: { d_model: 32, n_layers: 2, n_heads: 2, d_ff: dff.tiny, seq_len: 16 },
      train: { steps: 6, batch_size: 4, warmup_steps: 2, eval_every: 3, eval_batches: 2, checkpoint_every: 3 },
    },
    gpu: {
      model: { d_model: 384, n_layers: 6, n_heads: 6, d_ff: dff.gpu, seq_len: 256 },
      train: GPU_TRAIN,
    },
  };
}
