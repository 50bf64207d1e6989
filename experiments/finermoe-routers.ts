/**
 * finermoe-routers: one router for both FineRMoE levels vs one router per level (the paper's Table 3).
 * From a dense parent (`dense_parent`, one per seed), children on the same tokens: `dense` (continued),
 * `single` (the paper: one router's logits choose the experts in each group and, by their sum, the group of
 * each output slice) and `separate` (a second router picks the group per output slice; see
 * `FinermoeOptions.routers` for our reading), both at G_I = 8, G_O = 2, R_O = 2, T_I = 1 with the code's
 * defaults. Claim: the single router is better (lower perplexity). Report: lib/report/finermoe.ts.
 *
 * Scales (tokens per run = steps × batch_size × seq_len):
 * - tiny (tests): d_model 16, 1 layer, seq 16, 3 steps × 2, 1 seed, 4 runs.
 * - default (2 CPU cores): d_model 64, 2 layers, d_ff 256, seq 64, 160 steps × 16 × 64 = 163,840 tokens
 *   per run, 3 seeds, 12 runs. Measured cold on the shared 2-core machine (load average 20-27, native): ~17 min.
 * - gpu: d_model 384, 6 layers, d_ff 1024, seq 256, 1500 steps × 32 × 256, 3 seeds.
 */
import { defineExperiment } from "../lib/experiment/mod.ts";
import { finermoeRoutersReport } from "../lib/report/finermoe.ts";
import { finermoe } from "./_finermoe.ts";
import { sparseSpec } from "./_sparse_scales.ts";

export default defineExperiment({
  id: "finermoe-routers",
  description: "FineRMoE with one router for both levels (the paper) vs a separate router per level " +
    "(its Table 3), upcycled from a dense run.",
  ...sparseSpec({ steps: 160, seeds: [0, 1, 2], report: finermoeRoutersReport }, {
    single: finermoe(8, 2, { routers: "single" }),
    separate: finermoe(8, 2, { routers: "separate" }),
  }),
});
