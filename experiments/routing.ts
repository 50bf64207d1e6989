/**
 * routing: Finedeep's routing design at a fixed 4×4 split: gate logits from the expert OUTPUT
 * (r_k·o_k, the paper's "output-guided") vs from the sub-layer INPUT (r_k·x, a standard MoE gate),
 * normalised with sigmoid (the paper) vs softmax over the K experts, and no gate at all (plain sum).
 * Dense is the budget reference. Report: lib/report/finedeep.ts (`routingSql` reproduces the table).
 *
 * Scales (tokens = steps × batch_size × seq_len):
 * - tiny (tests): d_model 32, 2 layers, d_ff 259, seq 16, 6 steps × 4 × 16 = 384 tokens, 2 seeds.
 * - default (2 CPU cores): d_model 64, 4 layers, d_ff 258, seq 64, 150 steps × 16 × 64 = 153,600
 *   tokens per run, 3 seeds, 18 runs.
 * - gpu: d_model 384, 6 layers, d_ff 1026, seq 256, 2000 steps × 32 × 256 = 16.4M tokens per run.
 *
 * d_ff is chosen so that the variants with router vectors (+K·d per sub-layer) and the one without
 * (none) both stay within 1% of dense in parameters and FLOPs (checked by `budget`).
 */
import { defineExperiment, type FinedeepOptions, type VariantPatch } from "../lib/experiment/mod.ts";
import { routingReport } from "../lib/report/finedeep.ts";
import { finedeepDefault, finedeepFfn, finedeepScales } from "./_finedeep_scales.ts";

const finedeep = (score: FinedeepOptions["score"], norm_fn: FinedeepOptions["norm_fn"]): VariantPatch => ({
  model: { ffn: finedeepFfn({ score, norm_fn }) },
});

export default defineExperiment({
  id: "routing",
  description: "Finedeep 4x4 routing: output- vs input-guided scores x sigmoid vs softmax gates, vs no gate and dense.",
  ...finedeepDefault(258),
  variants: {
    dense: {},
    "output-sigmoid": finedeep("output", "sigmoid"),
    "output-softmax": finedeep("output", "softmax"),
    "input-sigmoid": finedeep("input", "sigmoid"),
    "input-softmax": finedeep("input", "softmax"),
    // No gate: score and router are unused (no router parameters); written as the defaults.
    none: finedeep("output", "none"),
  },
  budget: { tolerance: 0.01, reference: "dense" },
  report: routingReport,
  scales: finedeepScales({ tiny: 259, gpu: 1026 }),
});
