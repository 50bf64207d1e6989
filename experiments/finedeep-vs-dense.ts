/**
 * finedeep-vs-dense: Finedeep (balanced 4×4: M = 4 sub-layers of K = 4 experts, output-guided
 * sigmoid routing) vs the dense SwiGLU baseline at two model sizes (2 and 6 layers at the scale's
 * width; about 3× the parameters), budget-matched per size. The paper's claim: Finedeep beats
 * dense across model sizes. Report: lib/report/finedeep.ts (`fvdSql` reproduces the table).
 *
 * Scales (tokens = steps × batch_size × seq_len):
 * - tiny (tests): d_model 32, seq 16, 6 steps × 4 × 16 = 384 tokens, 2 seeds.
 * - default (2 CPU cores): d_model 64, d_ff 260, seq 64, 150 steps × 16 × 64 = 153,600 tokens per
 *   run, 3 seeds, 12 runs.
 * - gpu: d_model 384, d_ff 1028, seq 256, 2000 steps × 32 × 256 = 16.4M tokens per run.
 *
 * The sizes are the variants' `model.n_layers` (2 and 6 at every scale) because variants override
 * scale presets; scales set the width, sequence length and training budget.
 */
import { defineExperiment } from "../lib/experiment/mod.ts";
import { fvdReport } from "../lib/report/finedeep.ts";
import { FINEDEEP_TRAIN, finedeepFfn } from "./_finedeep_scales.ts";
import { GPU_TRAIN } from "./_gpu.ts";

const FINEDEEP = finedeepFfn();

export default defineExperiment({
  id: "finedeep-vs-dense",
  description: "Finedeep 4x4 vs dense at two model sizes (2 and 6 layers), matched parameters, FLOPs and tokens.",
  seeds: [0, 1, 2],
  data: { dataset: "gutenberg" },
  model: { d_model: 64, n_heads: 4, d_ff: 260, seq_len: 64, ffn: { kind: "dense" } },
  train: FINEDEEP_TRAIN,
  variants: {
    "dense-L2": { model: { n_layers: 2 } },
    "finedeep-L2": { model: { n_layers: 2, ffn: FINEDEEP } },
    "dense-L6": { model: { n_layers: 6 } },
    "finedeep-L6": { model: { n_layers: 6, ffn: FINEDEEP } },
  },
  budget: { tolerance: 0.01 },
  report: fvdReport,
  scales: {
    tiny: {
      seeds: [0, 1],
      data: { max_tokens: 200_000 },
      model: { d_model: 32, n_heads: 2, d_ff: 180, seq_len: 16 },
      train: { steps: 6, batch_size: 4, warmup_steps: 2, eval_every: 3, eval_batches: 2, checkpoint_every: 3 },
    },
    gpu: {
      model: { d_model: 384, n_heads: 6, d_ff: 1028, seq_len: 256 },
      train: GPU_TRAIN,
    },
  },
});
