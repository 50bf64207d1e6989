/**
 * scale-study: do the paper claims' verdicts survive scale? The arms every claim of the ledger
 * (lib/report/claims_declared.ts) compares, trained at three token budgets (the `train.steps` grid axis)
 * and two model sizes (the `model.d_model` grid axis), 3 seeds each; the report prints the claims ledger
 * at every (budget, size) point and draws one effect-vs-tokens plot per claim (lib/report/scale_study.ts).
 *
 * One base model for both families (so the budget and size axes mean the same everywhere): 2 layers,
 * 4 heads, seq 64, batch 16, lr 2e-3 with 15 warmup steps and cosine to 0.1x at every budget, no
 * periodic checkpoints. The arms are the original experiments' variants at this base:
 * - Finedeep (`fd_*`, d_ff 260 as in finedeep-vs-dense's 2-layer size): dense; 1x4, 2x2, 4x1 (the
 *   M·K = 4 line of ablation-mk); 2x2 with input-guided scores and with softmax gates (routing's
 *   alternatives, at 2x2 instead of 4x4). Finedeep 2x2 (output-guided sigmoid) stands for the paper's
 *   Finedeep in the claims of finedeep-vs-dense, nsar and routing.
 * - Sparse (`sp_*`, d_ff 256): a dense parent per seed and point (`sp_parent`) trained for the point's
 *   steps; its children train as many steps again on the next windows: continued dense, DSMoE τ = 0.5
 *   with and without the STE (dsmoe-tau, dsmoe-ste), FineRMoE (G_I 8, G_O 2, gated shared expert, one
 *   router = finermoe-dims' fg_both and finermoe-routers' single) and split-upcycled top-2 (finermoe-upcycle).
 *   Added in a second phase (so the study ran in two parts; the first 12 arms' hashes did not change):
 *   dsmoe-soft's arms, `sp_dsmoe_eval` (sp_dsmoe re-thresholded after training at τ = 0.01…0.9: it trains
 *   exactly as sp_dsmoe) and `sp_dsmoe_soft` (soft gates in training, thresholded at evaluation only);
 *   finermoe-dims' `sp_fg_none`, `sp_fg_inter`, `sp_fg_out`; finermoe-routers' `sp_finermoe_separate`;
 *   finermoe-granularity's corners `sp_gi2_go1`, `sp_gi2_go4`, `sp_gi8_go4` (G_I 8, G_O 1 is `sp_fg_inter`).
 *   The helpers are written out here, not imported from experiments/_*.ts (an imported module is hashed).
 *   The copy-upcycled top-2 is left out (time on the shared 2-core machine).
 *
 * Scale axes (tokens per run = steps × 16 × 64 = 1,024 per step): steps 50, 150, 300 (51k, 154k, 307k
 * tokens; 1/3x, 1x, 2x the Finedeep default) × d_model 32, 64 (the budgets are what fits the whole study
 * into about an hour on a quiet 2-core machine: about 2 s per run plus 30-50 ms per step there). A shared
 * baseline is one run per point and seed (same config, same hash), whichever claims read it. 21 arms × 6
 * points × 3 seeds = 378 runs.
 * Measured wall time: README "Claims across scale". There is no `tiny` scale (the grid would override
 * it); tests plan it (`--dry-run`) and shrink it with `--set train.steps=... --set model.d_model=...`.
 */
import { defineExperiment, type FinedeepOptions, type VariantPatch } from "../lib/experiment/mod.ts";
import type { DsmoeOptions, FinermoeOptions } from "../lib/experiment/mod.ts";
import { scaleStudyReport } from "../lib/report/scale_study.ts";
import { DENSE_TRAIN } from "./_dense.ts";
import { finedeepFfn } from "./_finedeep_scales.ts";

const PARENT = { variant: "sp_parent" };
const TOP2 = { kind: "topk_moe", experts: 8, top_k: 2, expert_width: null, renormalize: true } as const;
const FG = { r_i: 1, r_o: 2, t_i: 1, combine: "joint_softmax", shared_expert: "gated", balance_coef: 0.001 } as const;
const EVAL_TAUS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

const finedeep = (
  m: number,
  k: number,
  score: FinedeepOptions["score"] = "output",
  norm_fn: FinedeepOptions["norm_fn"] = "sigmoid",
): VariantPatch => ({
  model: { d_ff: 260, ffn: finedeepFfn({ m, k, score, norm_fn }) },
});
/** FineRMoE at (G_I, G_O), R_I = 1, R_O = 2, T_I = 1, with the finermoe experiments' settings. */
const fg = (g_i: number, g_o: number, extra: Partial<FinermoeOptions> = {}): VariantPatch => ({
  init_from: PARENT,
  model: { ffn: { kind: "finermoe", g_i, g_o, ...FG, train_compute: "sparse", ...extra } },
});
const dsmoe = (ste: boolean, extra: Partial<DsmoeOptions> = {}): VariantPatch => ({
  init_from: PARENT,
  model: { ffn: { kind: "dsmoe", experts: 8, tau: 0.5, lambda: 1, ste, rescale: true, ...extra } },
});

export default defineExperiment({
  id: "scale-study",
  description: "The claims' arms (Finedeep, DSMoE, FineRMoE vs their baselines) at 3 token budgets x 2 model " +
    "sizes, 3 seeds: does each claim's effect move toward the paper's with scale?",
  seeds: [0, 1, 2],
  data: { dataset: "gutenberg" },
  model: { d_model: 64, n_layers: 2, n_heads: 4, d_ff: 256, seq_len: 64, ffn: { kind: "dense" } },
  train: { ...DENSE_TRAIN, checkpoint_every: 0 },
  variants: {
    fd_dense: { model: { d_ff: 260 } },
    fd_1x4: finedeep(1, 4),
    fd_2x2: finedeep(2, 2),
    fd_4x1: finedeep(4, 1),
    fd_2x2_input: finedeep(2, 2, "input"),
    fd_2x2_softmax: finedeep(2, 2, "output", "softmax"),
    sp_parent: {},
    sp_dense: { init_from: PARENT },
    sp_dsmoe: dsmoe(true),
    sp_dsmoe_no_ste: dsmoe(false),
    sp_finermoe: fg(8, 2),
    sp_split_top2: { init_from: PARENT, model: { ffn: { ...TOP2, balance_coef: 0.01, train_compute: "sparse" } } },
    sp_dsmoe_eval: dsmoe(true, { train_gates: "threshold", eval_taus: EVAL_TAUS }),
    sp_dsmoe_soft: dsmoe(true, { rescale: false, train_gates: "soft", eval_taus: EVAL_TAUS }),
    sp_fg_none: fg(1, 1),
    sp_fg_inter: fg(8, 1),
    sp_fg_out: fg(1, 2),
    sp_finermoe_separate: fg(8, 2, { routers: "separate" }),
    sp_gi2_go1: fg(2, 1),
    sp_gi2_go4: fg(2, 4),
    sp_gi8_go4: fg(8, 4),
  },
  grid: { "train.steps": [50, 150, 300], "model.d_model": [32, 64] },
  metrics: ["val_loss", "val_ppl"],
  report: scaleStudyReport,
});
