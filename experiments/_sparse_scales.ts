/**
 * Scale presets shared by the sparse-model experiments (dsmoe-tau, dsmoe-ste, finermoe-upcycle,
 * finermoe-dims): `tiny` for the tests, `gpu` for a GPU machine. Each experiment keeps its own default
 * scale. (The leading `_` keeps this helper out of the experiment list.)
 */
import type { ExperimentSpec } from "../lib/experiment/mod.ts";

/** The `tiny` and `gpu` presets. */
export const SPARSE_SCALES: NonNullable<ExperimentSpec["scales"]> = {
  tiny: {
    seeds: [0],
    data: { max_bytes: 100_000 },
    model: { d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32, seq_len: 16 },
    train: { steps: 3, batch_size: 2, warmup_steps: 1, eval_every: 3, eval_batches: 1, checkpoint_every: 0 },
  },
  gpu: {
    seeds: [0, 1, 2],
    model: { d_model: 384, n_layers: 6, n_heads: 6, d_ff: 1024, seq_len: 256 },
    train: {
      steps: 1500,
      batch_size: 32,
      lr: 1e-3,
      warmup_steps: 75,
      eval_every: 250,
      eval_batches: 16,
      checkpoint_every: 250,
    },
  },
};
