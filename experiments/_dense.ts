/**
 * The dense reference model and schedule (compute.md) shared by dense-baseline and dense-bpe, and their
 * tiny (test) scale; {@link DENSE_TRAIN} is also the base of the Finedeep experiments' and scale-study's
 * schedules. (The leading `_` keeps this helper out of the experiment list.)
 */
import type { ConfigPatch, ExperimentSpec } from "../lib/experiment/mod.ts";

/** d_model 128, 4 layers, 4 heads, d_ff 384, seq 128, dense SwiGLU FFN. */
export const DENSE_MODEL = {
  d_model: 128,
  n_layers: 4,
  n_heads: 4,
  d_ff: 384,
  seq_len: 128,
  ffn: { kind: "dense" as const },
};

/** 150 steps of batch 16, lr 2e-3 with 15 warmup steps; eval and checkpoint every 50. */
export const DENSE_TRAIN = {
  steps: 150,
  batch_size: 16,
  lr: 2e-3,
  warmup_steps: 15,
  eval_every: 50,
  eval_batches: 8,
  checkpoint_every: 50,
};

/** The tiny scale's model and schedule: seconds on the cpu backend. */
export const DENSE_TINY = {
  model: { d_model: 32, n_layers: 2, n_heads: 2, d_ff: 64, seq_len: 32 },
  train: { steps: 8, batch_size: 4, warmup_steps: 2, eval_every: 4, eval_batches: 2, checkpoint_every: 4 },
};

/** Options of {@link denseSpec}. */
export interface DenseSpecOptions {
  /** The `tiny` scale's data.max_tokens. */
  tinyTokens: number;
  /** A `gpu` scale, when the experiment has one. */
  gpu?: ConfigPatch & { seeds?: number[] };
}

/**
 * All of a dense reference experiment's spec but its id and description: seeds 0 and 1, the dataset,
 * {@link DENSE_MODEL}, {@link DENSE_TRAIN}, one variant `dense`, and the `tiny` scale ({@link DENSE_TINY}
 * on the first `tinyTokens` tokens; seconds on the cpu backend, used by the tests) plus `gpu` when given.
 */
export function denseSpec(dataset: string, opts: DenseSpecOptions): Omit<ExperimentSpec, "id" | "description"> {
  const tiny = { data: { max_tokens: opts.tinyTokens }, ...DENSE_TINY };
  return {
    seeds: [0, 1],
    data: { dataset },
    model: DENSE_MODEL,
    train: DENSE_TRAIN,
    variants: { dense: {} },
    scales: opts.gpu ? { tiny, gpu: opts.gpu } : { tiny },
  };
}
