/**
 * dsmoe-soft: DSMoE's Figure 2 ablation and its inference-time τ sweep. From a dense parent (`dense_parent`,
 * one per seed) three children train on the same tokens:
 * - `dense`: continued dense training (reference);
 * - `threshold`: DSMoE as in the paper (τ = 0.5, STE, n/k rescale, λ = 1);
 * - `soft`: trained with the sigmoid gates as weights (`train_gates: soft`: no threshold, no STE, L1 on g)
 *   and thresholded only at evaluation (without the n/k rescale, which it never trained with).
 * Both DSMoE children are re-thresholded after training at τ ∈ {0.01, 0.02, 0.05, 0.1, …, 0.9} without retraining
 * (`eval_taus`, stored as `eval_tau_<τ>_val_loss` / `_experts_active` / `_params_active`): one model
 * gives the activation-vs-perplexity curve. Claims (lib/report/dsmoe.ts): soft-then-threshold is
 * worse than STE training at matched activation (the soft curve interpolated at the thresholded model's
 * activation), and re-thresholding traces a monotone curve.
 *
 * Scales (tokens per run = steps × batch_size × seq_len):
 * - tiny (tests): d_model 16, 1 layer, seq 16, 3 steps × 2, 1 seed, 4 runs.
 * - default (2 CPU cores): d_model 64, 2 layers, d_ff 256, seq 64, 200 steps × 16 × 64 = 204,800 tokens
 *   per run, 3 seeds, 12 runs. Measured cold on the shared 2-core machine (load average 15-20, native): 12 min 13 s.
 * - gpu: d_model 384, 6 layers, d_ff 1024, seq 256, 1500 steps × 32 × 256, 3 seeds.
 */
import { defineExperiment, type DsmoeOptions, type VariantPatch } from "../lib/experiment/mod.ts";
import { dsmoeSoftReport } from "../lib/report/dsmoe.ts";
import { PARENT, sparseSpec } from "./_sparse_scales.ts";

// Low thresholds too: the soft-trained gates shrink under the L1 loss, so its curve reaches the STE model's
// activation only at small τ (measured at default scale: 0.83 of 8 blocks above τ = 0.1).
const EVAL_TAUS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

const dsmoe = (train_gates: DsmoeOptions["train_gates"], rescale: boolean): VariantPatch => ({
  init_from: PARENT,
  model: {
    ffn: { kind: "dsmoe", experts: 8, tau: 0.5, lambda: 1, ste: true, rescale, train_gates, eval_taus: EVAL_TAUS },
  },
});

export default defineExperiment({
  id: "dsmoe-soft",
  description: "DSMoE trained with thresholded gates (STE) vs soft sigmoid gates thresholded only at evaluation " +
    "(the paper's Figure 2), each re-thresholded at τ = 0.01…0.9 after training.",
  ...sparseSpec({ steps: 200, seeds: [0, 1, 2], report: dsmoeSoftReport }, {
    threshold: dsmoe("threshold", true),
    soft: dsmoe("soft", false),
  }),
});
