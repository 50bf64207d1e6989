/**
 * The paper claims our experiments test, each declared once (the ledger: lib/report/claims.ts). Sources:
 * the digests in ../shared/research/ (finedeep.md §5, dsmoe.md Tables 2-4, finermoe.md Tables 2-4).
 *
 * A new claim is one entry: id, paper, statement, the direction of the variant vs its baseline that
 * supports it, and the experiments (variant vs baseline) that test it; a claim that is not a metric
 * difference declares its per-seed `effect` (the dsmoe-soft claims read the re-thresholded τ curves).
 * `scale-study` tests every claim at three token budgets and two model sizes (experiments/scale-study.ts;
 * its arms `sp_*` mirror the sparse experiments' variants, `fd_*` the Finedeep ones); only finedeep-arms'
 * tests (extra tests of claims the study measures) are at the default scale only.
 *
 * @module
 */
import type { Claim } from "./claims.ts";
import { rethresholdEffects, softVsThresholdEffects } from "./dsmoe_curve.ts";

const STUDY = "scale-study";
const GRID = "finermoe-granularity";
const ARMS = ["headline", "rms_post", "rms_both", "router_sublayer", "gate_open"];
/** The study's arm of the granularity cell (G_I, G_O): `sp_fg_inter` is G_I 8, G_O 1 (same options). */
const studyCell = (gi: number, go: number) => gi === 8 && go === 1 ? "sp_fg_inter" : `sp_gi${gi}_go${go}`;
/** finedeep-arms: each arm of the Finedeep 4x4 vs dense (experiments/finedeep-arms.ts). */
const arms = ARMS.map((variant) => ({ experiment: "finedeep-arms", variant, baseline: "dense" }));

/** Every claim of the ledger, in the order the ledger shows them. */
export const CLAIMS: readonly Claim[] = [
  {
    id: "finedeep-beats-dense",
    paper: "Finedeep",
    statement: "At matched parameters, FLOPs and tokens, Finedeep reaches lower perplexity than dense",
    supports: "lower",
    tests: [
      { experiment: "finedeep-vs-dense", variant: "finedeep-L2", baseline: "dense-L2" },
      { experiment: "finedeep-vs-dense", variant: "finedeep-L6", baseline: "dense-L6" },
      { experiment: "ablation-mk", variant: "4x4", baseline: "dense" },
      { experiment: STUDY, variant: "fd_2x2", baseline: "fd_dense" },
      ...arms,
    ],
  },
  {
    id: "finedeep-balanced-mk",
    paper: "Finedeep",
    statement: "At fixed M·K a balanced M/K beats both extremes (pure width M = 1, pure depth K = 1)",
    supports: "lower",
    tests: [
      { experiment: "ablation-mk", variant: "2x2", baseline: ["1x4", "4x1"] },
      { experiment: "ablation-mk", variant: "4x4", baseline: ["1x16", "16x1"] },
      { experiment: STUDY, variant: "fd_2x2", baseline: ["fd_1x4", "fd_4x1"] },
    ],
  },
  {
    id: "finedeep-nsar",
    paper: "Finedeep",
    statement: "Finedeep mitigates sparse activation: higher NSAR_0.1 of SiLU(gate) than dense",
    metric: "nsar_gate_0.1",
    supports: "higher",
    tests: [
      { experiment: "nsar", variant: "finedeep", baseline: "dense" },
      { experiment: STUDY, variant: "fd_2x2", baseline: "fd_dense" },
      ...arms,
    ],
  },
  {
    id: "finedeep-output-routing",
    paper: "Finedeep",
    statement: "Output-guided router scores beat input-guided ones",
    supports: "lower",
    tests: [
      { experiment: "routing", variant: "output-sigmoid", baseline: "input-sigmoid" },
      { experiment: STUDY, variant: "fd_2x2", baseline: "fd_2x2_input" },
    ],
  },
  {
    id: "finedeep-sigmoid-gates",
    paper: "Finedeep",
    statement: "Sigmoid gates beat softmax-over-K gates",
    supports: "lower",
    tests: [
      { experiment: "routing", variant: "output-sigmoid", baseline: "output-softmax" },
      { experiment: STUDY, variant: "fd_2x2", baseline: "fd_2x2_softmax" },
    ],
  },
  {
    id: "dsmoe-dense-quality",
    paper: "DSMoE",
    statement: "DSMoE (τ = 0.5) keeps dense quality with fewer activated parameters (not worse than dense)",
    supports: "lower",
    rule: "not_worse",
    tests: [
      { experiment: "dsmoe-tau", variant: "dsmoe_t0.5", baseline: "dense" },
      { experiment: STUDY, variant: "sp_dsmoe", baseline: "sp_dense" },
    ],
  },
  {
    id: "dsmoe-ste",
    paper: "DSMoE",
    statement: "Training DSMoE without the straight-through estimator is worse (gates collapse)",
    supports: "lower",
    tests: [
      { experiment: "dsmoe-ste", variant: "ste_t0.5", baseline: "no_ste_t0.5" },
      { experiment: "dsmoe-ste", variant: "ste_t0.65", baseline: "no_ste_t0.65" },
      { experiment: STUDY, variant: "sp_dsmoe", baseline: "sp_dsmoe_no_ste" },
    ],
  },
  {
    id: "dsmoe-soft-worse",
    paper: "DSMoE",
    statement: "Soft gates thresholded only at evaluation are worse than STE training at matched activation " +
      "(Figure 2): the soft model's re-thresholded curve at the thresholded model's blocks/token (τ = 0.5)",
    supports: "higher",
    effect: {
      reads: "eval_tau_",
      unit: "%",
      label: "soft vs thresholded ppl at matched activation, %",
      of: (v, b) => softVsThresholdEffects(v, b),
    },
    tests: [
      { experiment: "dsmoe-soft", variant: "soft", baseline: "threshold" },
      { experiment: STUDY, variant: "sp_dsmoe_soft", baseline: "sp_dsmoe_eval" },
    ],
  },
  {
    id: "dsmoe-tau-monotone",
    paper: "DSMoE",
    statement: "Re-thresholding one trained model at inference traces a monotone activation/perplexity " +
      "trade-off (effect: rises in activation plus falls in ppl as τ rises, per seed; 0 = monotone)",
    supports: "lower",
    rule: "zero",
    effect: {
      reads: "eval_tau_",
      unit: "abs",
      label: "monotonicity violations of the τ curve (count)",
      of: (v) => rethresholdEffects(v),
    },
    tests: [{ experiment: "dsmoe-soft", variant: "threshold" }, { experiment: STUDY, variant: "sp_dsmoe_eval" }],
  },
  {
    id: "finermoe-beats-upcycling",
    paper: "FineRMoE",
    statement: "Upcycled FineRMoE beats continued dense training and copy- and split-upcycled top-2 MoE",
    supports: "lower",
    tests: [
      { experiment: "finermoe-upcycle", variant: "finermoe", baseline: ["dense", "copy_top2", "split_top2"] },
      { experiment: STUDY, variant: "sp_finermoe", baseline: ["sp_dense", "sp_split_top2"] },
    ],
  },
  {
    id: "finermoe-output-fg",
    paper: "FineRMoE",
    statement: "Fine-graining the output dimension beats fine-graining the intermediate dimension",
    supports: "lower",
    tests: [
      { experiment: "finermoe-dims", variant: "fg_out", baseline: "fg_inter" },
      { experiment: STUDY, variant: "sp_fg_out", baseline: "sp_fg_inter" },
    ],
  },
  {
    id: "finermoe-both-fg",
    paper: "FineRMoE",
    statement: "Fine-graining both dimensions is best",
    supports: "lower",
    tests: [
      { experiment: "finermoe-dims", variant: "fg_both", baseline: ["fg_none", "fg_inter", "fg_out"] },
      { experiment: STUDY, variant: "sp_finermoe", baseline: ["sp_fg_none", "sp_fg_inter", "sp_fg_out"] },
    ],
  },
  {
    id: "finermoe-single-router",
    paper: "FineRMoE",
    statement: "One router for both levels beats a separate router per level (Table 3)",
    supports: "lower",
    tests: [
      { experiment: "finermoe-routers", variant: "single", baseline: "separate" },
      { experiment: STUDY, variant: "sp_finermoe", baseline: "sp_finermoe_separate" },
    ],
  },
  {
    id: "finermoe-finer-go",
    paper: "FineRMoE",
    statement: "A finer output granularity G_O helps at every G_I (Table 4)",
    supports: "lower",
    tests: [
      ...[2, 8].map((gi) => ({ experiment: GRID, variant: `gi${gi}_go4`, baseline: `gi${gi}_go1` })),
      ...[2, 8].map((gi) => ({ experiment: STUDY, variant: `sp_gi${gi}_go4`, baseline: studyCell(gi, 1) })),
    ],
  },
  {
    id: "finermoe-finer-gi",
    paper: "FineRMoE",
    statement: "A finer intermediate granularity G_I helps at every G_O (Table 4)",
    supports: "lower",
    tests: [
      ...[1, 4].map((go) => ({ experiment: GRID, variant: `gi8_go${go}`, baseline: `gi2_go${go}` })),
      ...[1, 4].map((go) => ({ experiment: STUDY, variant: studyCell(8, go), baseline: `sp_gi2_go${go}` })),
    ],
  },
];
