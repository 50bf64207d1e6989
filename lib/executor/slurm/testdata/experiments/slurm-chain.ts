/**
 * Slurm test fixture: a parent -> child sweep of the fault suite's toy model (1 layer, d_model 16, four Blake
 * poems): a dense parent and two children that start from its final weights (continued dense training and a
 * top-2 MoE upcycled from it), one seed. Checkpoints every 2 steps so a kill lands between checkpoints.
 */
import { defineExperiment } from "../../../../experiment/mod.ts";

export default defineExperiment({
  id: "slurm-chain",
  description: "Slurm test fixture: a dense parent and two children trained from its weights.",
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
  variants: {
    parent: {},
    cont: { init_from: { variant: "parent" } },
    moe: {
      init_from: { variant: "parent" },
      model: { ffn: { kind: "topk_moe", experts: 4, top_k: 2 } },
    },
  },
  slurm: { signal_s: 30 },
});
