/**
 * Fault-suite fixture: one run of a toy model (1 layer, d_model 16) on four Blake poems, a few
 * seconds on wasm, with a checkpoint every 2 steps so kills land between checkpoints.
 */
import { defineExperiment } from "../../../../experiment/mod.ts";

export default defineExperiment({
  id: "faults",
  description: "Fault-suite fixture: one tiny run, checkpoint every 2 steps.",
  seeds: [0],
  backend: "wasm",
  data: { dataset: "file", path: "lib/cli/faults/testdata/corpus", val_fraction: 0.25 },
  model: { d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32, seq_len: 16 },
  train: {
    steps: 12,
    batch_size: 2,
    lr: 3e-3,
    warmup_steps: 2,
    eval_every: 4,
    eval_batches: 2,
    checkpoint_every: 2,
    log_every: 1,
  },
  variants: { toy: {} },
});
