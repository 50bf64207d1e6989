/**
 * Presets shared by the Finedeep experiments (ablation-mk, routing, nsar, finedeep-vs-dense): the default
 * schedule ({@link FINEDEEP_TRAIN}), and the `tiny` (tests) and `gpu` (schedule from `_gpu.ts`) scales. Only
 * d_ff differs between the experiments (each picks the d_ff that keeps its Finedeep variants within the
 * parameter budget), so it is the argument. (The leading `_` keeps this helper out of the experiment list.)
 */
import type { ExperimentSpec } from "../lib/experiment/mod.ts";
import { GPU_TRAIN } from "./_gpu.ts";

/** The default scale's schedule: 150 steps × 16 × 64 tokens. */
export const FINEDEEP_TRAIN = {
  steps: 150,
  batch_size: 16,
  lr: 2e-3,
  warmup_steps: 15,
  eval_every: 50,
  eval_batches: 8,
  checkpoint_every: 75,
};

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
