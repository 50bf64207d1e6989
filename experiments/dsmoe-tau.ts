/**
 * dsmoe-tau: DSMoE's threshold τ (and sparsity coefficient λ) trades quality for activated
 * parameters. A dense SwiGLU model (`dense_parent`) is trained first; every other variant starts
 * from its final weights (`init_from`, lib/models/upcycle.ts) and trains for the same number of
 * steps on the same tokens:
 * - `dense`: continued dense training (the quality reference, 100% of the FFN active);
 * - `dsmoe_t<τ>`: DSMoE with n = 8 blocks, τ ∈ {0.2, 0.35, 0.5, 0.65, 0.8}, λ = 1 (the paper);
 * - `dsmoe_t0.5_l<λ>`: τ = 0.5 with λ ∈ {0.1, 3};
 * - `topk_k1`, `topk_k2`, `topk_k4`: a split-upcycled top-k MoE (8 experts = the 8 slices of the dense
 *   FFN, balance coefficient 0.01; Mixtral renormalisation for k > 1, the router probability as weight for
 *   k = 1 as in Switch) at a fixed 12.5% / 25% / 50% of the FFN active, bracketing DSMoE's measured activation (DSMoE's is data-dependent, so exact matching is not
 *   possible before training; the report places every variant on the same axis).
 *
 * Activated parameters are measured from the gates on the validation batches
 * (lib/models/sparse_metrics.ts, `params_active`). The verdict compares DSMoE at τ = 0.5 with the
 * dense continued run (perplexity, Welch t) and with the top-k MoE whose activated FFN fraction is
 * closest.
 *
 * Parents: each child starts from the `dense_parent` run of its own seed (so seed-to-seed spread
 * includes the parent's). Batches are a function of (seed, step); children continue their seed's stream
 * after the parent's steps (new windows, lib/train/mod.ts `steps_before`), so all children of a seed see
 * exactly the same tokens.
 *
 * Scales (tokens per run = steps × batch_size × seq_len; children run the same schedule as the parent):
 * - tiny (tests): d_model 16, 1 layer, seq 16, 3 steps × 2, 1 seed, 12 runs (seconds on cpu).
 * - default (2 CPU cores): d_model 64, 2 layers, 4 heads, d_ff 256, seq 64, 200 steps × 16 × 64 =
 *   204,800 tokens per run, 2 seeds, 24 runs (4,800 steps). Measured cold on the 2-core dev machine:
 *   2 min 55 s on native (`auto` there), 12 min 40 s with `--backend wasm`.
 * - gpu: d_model 384, 6 layers, d_ff 1024, seq 256, 1500 steps × 32 × 256, 3 seeds.
 */
import { defineExperiment, type VariantPatch } from "../lib/experiment/mod.ts";
import { dsmoeTauReport } from "../lib/report/dsmoe.ts";
import { PARENT, sparseSpec } from "./_sparse_scales.ts";

const TAUS = [0.2, 0.35, 0.5, 0.65, 0.8];
const LAMBDAS = [0.1, 3];

const dsmoe = (tau: number, lambda: number): VariantPatch => ({
  init_from: PARENT,
  model: { ffn: { kind: "dsmoe", experts: 8, tau, lambda, ste: true, rescale: true } },
});
// Top-1 keeps the router's probability as the weight (Switch); renormalised it would be 1 and the router would
// learn from the balance loss only.
const topk = (k: number): VariantPatch => ({
  init_from: PARENT,
  model: {
    ffn: { kind: "topk_moe", experts: 8, top_k: k, expert_width: null, renormalize: k > 1, balance_coef: 0.01 },
  },
});

const variants: Record<string, VariantPatch> = {
  ...Object.fromEntries(TAUS.map((t) => [`dsmoe_t${t}`, dsmoe(t, 1)])),
  ...Object.fromEntries(LAMBDAS.map((l) => [`dsmoe_t0.5_l${l}`, dsmoe(0.5, l)])),
  topk_k1: topk(1),
  topk_k2: topk(2),
  topk_k4: topk(4),
};

export default defineExperiment({
  id: "dsmoe-tau",
  description: "DSMoE (dense FFN partitioned into 8 gated blocks) upcycled from a dense run: perplexity vs " +
    "activated parameters over the threshold τ and sparsity coefficient λ, against continued dense training and " +
    "a split-upcycled top-k MoE at 25%/50% activation.",
  ...sparseSpec({ steps: 200, seeds: [0, 1], report: dsmoeTauReport }, variants),
});
