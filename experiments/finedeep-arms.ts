/**
 * finedeep-arms: the choices the Finedeep paper leaves ambiguous (its body was not available; see
 * /work/shared/research/finedeep.md), as arms of one experiment at M × K = 4 × 4, each against dense at
 * matched parameters and tokens (budget-checked):
 * - `headline`: the form every other Finedeep experiment uses (pre-norm on each sub-layer input, one router
 *   per expert, zero-initialised routers so every gate starts at σ(0) = 0.5);
 * - `rms_post`, `rms_both`: RMSNorm on the gated sum before the residual add, or both placements;
 * - `router_sublayer`: one router vector per sub-layer shared by its K experts;
 * - `gate_open`: a learnable gate bias initialised to 3 (gates start at σ(3) ≈ 0.95, so each sub-layer's output
 *   starts almost un-halved).
 * NSAR is stored under both readings the analysis implements (SiLU(gate) and SiLU(gate)·up, τ = 0.01…0.2);
 * the headline uses SiLU(gate) at τ = 0.1. The report (lib/report/finedeep_arms.ts) compares every arm with
 * dense (final perplexity, Welch t) and the loss gap to dense at steps 20, 40 and the end: does a gate-open
 * init remove the early lag seen in ablation-mk?
 *
 * Scales (tokens = steps × batch_size × seq_len):
 * - tiny (tests): d_model 32, 2 layers, seq 16, 6 steps × 4 × 16 = 384 tokens, 2 seeds.
 * - default (2 CPU cores): d_model 64, 4 layers, d_ff 260, seq 64, 150 steps × 16 × 64 = 153,600 tokens per
 *   run (evaluated every 10 steps), 2 seeds, 12 runs (2 seeds, not 3: on the shared 2-core machine 18 runs
 *   would not fit the ~15 min budget). Measured cold on the shared 2-core machine (load average 15-20, native):
 *   23 min 31 s.
 * - gpu: d_model 384, 6 layers, d_ff 1028, seq 256, 2000 steps × 32 × 256 = 16.4M tokens per run, 2 seeds.
 */
import { defineExperiment, type FinedeepOptions, type VariantPatch } from "../lib/experiment/mod.ts";
import { finedeepArmsReport } from "../lib/report/finedeep_arms.ts";
import { FINEDEEP_TRAIN, finedeepDefault, finedeepFfn, finedeepScales } from "./_finedeep_scales.ts";

const arm = (o: Partial<FinedeepOptions> = {}): VariantPatch => ({ model: { ffn: finedeepFfn(o) } });

export default defineExperiment({
  id: "finedeep-arms",
  description: "Finedeep 4x4's ambiguous choices as arms (RMSNorm placement, router per expert or sub-layer, " +
    "gate initialisation) vs dense at matched parameters, FLOPs and tokens, with the early loss gap.",
  ...finedeepDefault(260, [0, 1]),
  train: { ...FINEDEEP_TRAIN, eval_every: 10 },
  variants: {
    dense: {},
    headline: arm(),
    rms_post: arm({ rmsnorm: "post" }),
    rms_both: arm({ rmsnorm: "both" }),
    router_sublayer: arm({ router: "sublayer" }),
    gate_open: arm({ gate_bias: 3 }),
  },
  // 1.5%: at the tiny scale the arms' extra parameters (post-norm gains, one router per sub-layer) differ by
  // more than one expert-width step can absorb within 1% (default: all arms within ±0.9%).
  budget: { tolerance: 0.015, reference: "dense" },
  metrics: ["val_loss", "val_ppl"],
  report: finedeepArmsReport,
  scales: finedeepScales({ tiny: 180, gpu: 1028 }),
});
