/**
 * finermoe-upcycle: FineRMoE's main claim at small scale. From a trained dense SwiGLU model
 * (`dense_parent`), five children start from its final weights (lib/models/upcycle.ts) and train with
 * the same schedule on the same tokens:
 * - `dense`: continued dense training (the paper's CT);
 * - `finermoe`: G_I = 8, R_I = 1, G_O = 2, R_O = 2, T_I = 1 (32 routed experts, 2 active), gated shared
 *   expert, joint softmax, sequence-level balance loss 0.001 (the official code's defaults);
 * - `finermoe_no_shared`: the same without the shared expert (routed W2 scaled by G_I, the code's rule);
 * - `copy_top2`: copy-upcycled top-2 MoE with 8 experts (every expert = the dense FFN, Mixtral
 *   renormalisation). Built as FineRMoE (G_I, R_I, G_O, R_O) = (1, 8, 1, 1), T_I = 2, no shared
 *   expert, which is exactly copy-upcycling (the paper's "CmA2" generalisation): unlike
 *   `topk_moe`'s `expert_width = d_ff`, it needs no scale-specific width, so one variant serves
 *   every scale;
 * - `split_top2`: split-upcycled top-k MoE (`topk_moe`, 8 experts = the 8 contiguous slices of the dense
 *   FFN, top-2, balance coefficient 0.01).
 *
 * Parent: as the issue asks, ONE dense run (`dense_parent`, `single_seed`: trained on the first seed only)
 * is the parent of every child of every seed, so the 3 seeds differ in router init and data order, not in
 * the starting point. Children continue their seed's batch stream after the parent's steps
 * (lib/train/mod.ts `steps_before`): they train on new windows, and all children of a seed see exactly
 * the same tokens.
 *
 * Routed training uses the sparse form (`train_compute: sparse`, the same function as the masked form,
 * tested equal) to keep the 8 full-width copies and FineRMoE's 32 experts affordable on CPU.
 *
 * Scales (tokens per run = steps × batch_size × seq_len):
 * - tiny (tests): d_model 16, 1 layer, seq 16, 3 steps × 2, 1 seed, 6 runs.
 * - default (2 CPU cores): d_model 64, 2 layers, 4 heads, d_ff 256, seq 64, 160 steps × 16 × 64 =
 *   163,840 tokens per run, 3 seeds, 16 runs (1 parent + 15 children, 2,560 steps). Measured cold on the
 *   2-core dev machine: 2 min 42 s on native (`auto` there), 7 min 59 s with `--backend wasm`.
 * - gpu: d_model 384, 6 layers, d_ff 1024, seq 256, 1500 steps × 32 × 256, 3 seeds.
 */
import { defineExperiment, type VariantPatch } from "../lib/experiment/mod.ts";
import { finermoeUpcycleReport } from "../lib/report/finermoe.ts";
import { PARENT, sparseSpec } from "./_sparse_scales.ts";

const finermoe = (
  g: { g_i: number; r_i: number; g_o: number; r_o: number; t_i: number },
  shared: "gated" | "none",
): VariantPatch => ({
  init_from: PARENT,
  model: {
    ffn: {
      kind: "finermoe",
      ...g,
      combine: "joint_softmax",
      shared_expert: shared,
      balance_coef: 0.001,
      train_compute: "sparse",
    },
  },
});

const variants: Record<string, VariantPatch> = {
  finermoe: finermoe({ g_i: 8, r_i: 1, g_o: 2, r_o: 2, t_i: 1 }, "gated"),
  finermoe_no_shared: finermoe({ g_i: 8, r_i: 1, g_o: 2, r_o: 2, t_i: 1 }, "none"),
  copy_top2: finermoe({ g_i: 1, r_i: 8, g_o: 1, r_o: 1, t_i: 2 }, "none"),
  split_top2: {
    init_from: PARENT,
    model: {
      ffn: {
        kind: "topk_moe",
        experts: 8,
        top_k: 2,
        expert_width: null,
        renormalize: true,
        balance_coef: 0.01,
        train_compute: "sparse",
      },
    },
  },
};

export default defineExperiment({
  id: "finermoe-upcycle",
  description: "From one dense parent per seed: continued dense training vs FineRMoE (with / without shared " +
    "expert) vs copy-upcycled and split-upcycled top-2 MoE, on the same tokens.",
  ...sparseSpec(
    { steps: 160, seeds: [0, 1, 2], report: finermoeUpcycleReport, parent: { single_seed: true } },
    variants,
  ),
});
