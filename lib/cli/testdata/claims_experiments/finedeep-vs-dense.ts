/**
 * Fixture of lib/cli/claims_cmd_test.ts: a toy experiment under the id of one a claim names
 * (finedeep-vs-dense: finedeep-L2 vs dense-L2), 2 seeds, seconds on wasm.
 */
import { defineExperiment } from "../../../experiment/mod.ts";

export default defineExperiment({
  id: "finedeep-vs-dense",
  description: "claims CLI fixture: dense vs Finedeep 2x2, toy size.",
  seeds: [0, 1],
  backend: "wasm",
  data: { dataset: "file", path: "lib/cli/faults/testdata/corpus", val_fraction: 0.25 },
  model: { d_model: 16, n_layers: 2, n_heads: 2, d_ff: 36, seq_len: 16 },
  train: { steps: 4, batch_size: 2, warmup_steps: 1, eval_every: 4, eval_batches: 1, checkpoint_every: 0 },
  variants: {
    "dense-L2": {},
    "finedeep-L2": {
      model: {
        ffn: { kind: "finedeep", m: 2, k: 2, score: "output", norm_fn: "sigmoid", router: "expert", rmsnorm: "pre" },
      },
    },
  },
});
