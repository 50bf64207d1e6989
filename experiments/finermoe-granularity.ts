/**
 * finermoe-granularity: FineRMoE's G_I × G_O sweep (the shape of its Table 4) at our scale. From a dense
 * parent (`dense_parent`, one per seed), children on the same tokens: `dense` (continued) and FineRMoE at
 * G_I ∈ {2, 8} (expert hidden width d_ff/G_I) × G_O ∈ {1, 4} (expert output width d_model/G_O), with
 * R_I = 1, R_O = 2, T_I = 1 and the code's defaults (variant `gi<G_I>_go<G_O>`). As in the paper the cells
 * are not compute-matched (raising G_O replicates the input projections): the report prints activated
 * parameters beside perplexity. Claims (its Table 4): finer G_O helps at every G_I, finer G_I helps at
 * every G_O. Report: lib/report/finermoe.ts.
 *
 * Scales (tokens per run = steps × batch_size × seq_len):
 * - tiny (tests): d_model 16, 1 layer, seq 16, 3 steps × 2, 1 seed, 6 runs.
 * - default (2 CPU cores): d_model 64, 2 layers, d_ff 256, seq 64, 160 steps × 16 × 64 = 163,840 tokens
 *   per run, 2 seeds, 12 runs. Measured cold on the shared 2-core machine (load average ~20, native): 13 min 20 s.
 * - gpu: d_model 384, 6 layers, d_ff 1024, seq 256, 1500 steps × 32 × 256, 3 seeds.
 */
import { defineExperiment, type VariantPatch } from "../lib/experiment/mod.ts";
import { finermoeGranularityReport } from "../lib/report/finermoe.ts";
import { finermoe } from "./_finermoe.ts";
import { sparseSpec } from "./_sparse_scales.ts";

// The corners of the paper's grid at our width (G_I = 4 and G_O = 2 left out: on the shared 2-core machine the
// full 3 × 3 grid at 2 seeds would take well over the ~15 min budget).
const G_I = [2, 8], G_O = [1, 4];

const variants: Record<string, VariantPatch> = {
  ...Object.fromEntries(G_I.flatMap((gi) => G_O.map((go) => [`gi${gi}_go${go}`, finermoe(gi, go)]))),
};

export default defineExperiment({
  id: "finermoe-granularity",
  description: "FineRMoE upcycled from a dense run over intermediate (G_I) × output (G_O) granularity: " +
    "perplexity beside activated parameters.",
  ...sparseSpec({ steps: 160, seeds: [0, 1], report: finermoeGranularityReport }, variants),
});
