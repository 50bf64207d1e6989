/**
 * finermoe-dims: which dimension to make fine-grained (FineRMoE's Table 2). From a trained dense
 * parent (`dense_parent`, one per seed), four FineRMoE children with the code's defaults (gated shared
 * expert, joint softmax, T_I = 1, R_I = 1, R_O = 2, balance 0.001) differ only in granularity
 * (G_I, G_O), the paper's settings scaled to d_ff = 4·d_model:
 * - `fg_none` (1, 1): 2 full-width experts, 1 active;
 * - `fg_inter` (8, 1): 16 experts of width d_ff/8, 1 active;
 * - `fg_out` (1, 2): 4 full-width experts writing d_model/2 each, 2 active (one per output slice);
 * - `fg_both` (8, 2): 32 experts of width d_ff/8 writing d_model/2, 2 active;
 * plus `dense` (continued dense training). As in the paper the variants are not compute-matched: the
 * report prints activated parameters (measured from the routing) beside perplexity.
 *
 * The paper's claims: output-only beats intermediate-only, and both together is best. The verdict
 * checks both from the perplexity means (with Welch's t where seeds allow).
 *
 * Parents: each child starts from the `dense_parent` of its own seed; batches are a function of (seed,
 * step) and children continue the stream after the parent's steps, so all children of a seed see exactly
 * the same (new) tokens. Routed training uses the sparse form.
 *
 * Scales (tokens per run = steps × batch_size × seq_len):
 * - tiny (tests): d_model 16, 1 layer, seq 16, 3 steps × 2, 1 seed, 6 runs.
 * - default (2 CPU cores): d_model 64, 2 layers, 4 heads, d_ff 256, seq 64, 160 steps × 16 × 64 =
 *   163,840 tokens per run, 2 seeds, 12 runs (1,920 steps). Measured cold on the 2-core dev machine:
 *   2 min 3 s on native (`auto` there), 6 min 48 s with `--backend wasm`.
 * - gpu: d_model 384, 6 layers, d_ff 1024, seq 256, 1500 steps × 32 × 256, 3 seeds.
 */
import { defineExperiment, type VariantPatch } from "../lib/experiment/mod.ts";
import { finermoeDimsReport } from "../lib/report/finermoe.ts";
import { finermoe } from "./_finermoe.ts";
import { sparseSpec } from "./_sparse_scales.ts";

const variants: Record<string, VariantPatch> = {
  fg_none: finermoe(1, 1),
  fg_inter: finermoe(8, 1),
  fg_out: finermoe(1, 2),
  fg_both: finermoe(8, 2),
};

export default defineExperiment({
  id: "finermoe-dims",
  description: "FineRMoE upcycled from a dense run with no / intermediate / output / both dimensions " +
    "fine-grained: perplexity beside activated parameters.",
  ...sparseSpec({ steps: 160, seeds: [0, 1], report: finermoeDimsReport }, variants),
});
