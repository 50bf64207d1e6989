/**
 * The `gpu` scale's training schedule shared by the dense reference (dense-baseline) and the Finedeep
 * experiments: 2000 steps of batch 32. (The leading `_` keeps this helper out of the experiment list.)
 */
export const GPU_TRAIN = {
  steps: 2000,
  batch_size: 32,
  lr: 1e-3,
  warmup_steps: 100,
  eval_every: 250,
  eval_batches: 16,
  checkpoint_every: 250,
};
