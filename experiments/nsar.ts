/**
 * nsar: sparse activation in dense vs Finedeep FFNs. For each run, the end-of-run analysis
 * (lib/train/analysis.ts) measures on the validation batches NSAR_τ = fraction of |SiLU(x·W_gate)| > τ
 * (τ = 0.01, 0.05, 0.1, 0.2; Finedeep's M·K experts pooled so the unit count is d_ff), the same on
 * SiLU(gate)·up, and the histogram of SiLU(gate) per layer. The paper's claim: Finedeep mitigates
 * sparse activation (higher NSAR). Report: lib/report/finedeep.ts (`nsarSql` reproduces the table).
 *
 * Scales (tokens = steps × batch_size × seq_len; analysis on eval_batches × batch_size × seq_len tokens):
 * - tiny (tests): d_model 32, 2 layers, seq 16, 6 steps × 4 × 16 = 384 tokens, 2 seeds.
 * - default (2 CPU cores): d_model 64, 4 layers, d_ff 260, seq 64, 150 steps × 16 × 64 = 153,600
 *   tokens per run, analysis on 16 × 16 × 64 = 16,384 validation tokens, 3 seeds, 6 runs.
 * - gpu: d_model 384, 6 layers, d_ff 1028, seq 256, 2000 steps × 32 × 256 = 16.4M tokens per run.
 */
import { defineExperiment } from "../lib/experiment/mod.ts";
import { nsarReport } from "../lib/report/finedeep.ts";
import { FINEDEEP_TRAIN, finedeepDefault, finedeepFfn, finedeepScales } from "./_finedeep_scales.ts";

export default defineExperiment({
  id: "nsar",
  description: "Non-sparse activation rate (NSAR) and SiLU(gate) histograms per layer: dense vs Finedeep 4x4.",
  ...finedeepDefault(260),
  train: { ...FINEDEEP_TRAIN, eval_batches: 16 },
  variants: {
    dense: {},
    finedeep: { model: { ffn: finedeepFfn() } },
  },
  budget: { tolerance: 0.01, reference: "dense" },
  report: nsarReport,
  scales: finedeepScales({ tiny: 180, gpu: 1028 }),
});
