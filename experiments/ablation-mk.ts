/**
 * ablation-mk: Finedeep's depth/width trade-off. The dense SwiGLU FFN is split into M sub-layers of
 * K experts at a fixed number of experts M·K (the M·K = 16 line 1×16 … 16×1 and the M·K = 4 line
 * 1×4, 2×2, 4×1), all at the dense baseline's parameters and FLOPs (checked: `budget`), trained on
 * the same tokens with the same optimizer. The paper's claim: a balanced M/K is best and Finedeep
 * beats dense. Report: lib/report/finedeep.ts (`ablationSql` reproduces the table).
 *
 * Scales (tokens = steps × batch_size × seq_len):
 * - tiny (tests): d_model 32, 2 layers, seq 16, 6 steps × 4 × 16 = 384 tokens, 2 seeds, 200 kB of text.
 * - default (2 CPU cores): d_model 64, 4 layers, 4 heads, d_ff 260, seq 64, 150 steps × 16 × 64 =
 *   153,600 tokens per run, 3 seeds, 27 runs.
 * - gpu: d_model 384, 6 layers, 6 heads, d_ff 1028, seq 256, 2000 steps × 32 × 256 = 16.4M tokens per run.
 *
 * d_ff = 16·E + 4 makes every variant's FFN (experts + router vectors) land within +0.4% of the
 * dense parameter count; the budget check refuses the grid if any variant drifts past 1%.
 */
import { defineExperiment, type VariantPatch } from "../lib/experiment/mod.ts";
import { ablationReport } from "../lib/report/finedeep.ts";
import { finedeepDefault, finedeepFfn, finedeepScales } from "./_finedeep_scales.ts";

const finedeep = (m: number, k: number): VariantPatch => ({ model: { ffn: finedeepFfn({ m, k }) } });

export default defineExperiment({
  id: "ablation-mk",
  description: "Finedeep depth (M sub-layers) vs width (K experts) at fixed M·K = 16 and 4, vs dense, " +
    "at matched parameters, FLOPs and tokens.",
  ...finedeepDefault(260),
  variants: {
    dense: {},
    "1x16": finedeep(1, 16),
    "2x8": finedeep(2, 8),
    "4x4": finedeep(4, 4),
    "8x2": finedeep(8, 2),
    "16x1": finedeep(16, 1),
    "1x4": finedeep(1, 4),
    "2x2": finedeep(2, 2),
    "4x1": finedeep(4, 1),
  },
  budget: { tolerance: 0.01, reference: "dense" },
  metrics: ["val_loss", "val_ppl"],
  report: ablationReport,
  scales: finedeepScales({ tiny: 180, gpu: 1028 }),
});
