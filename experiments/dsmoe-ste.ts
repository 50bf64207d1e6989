/**
 * dsmoe-ste: does DSMoE need its straight-through estimator? The paper (arXiv 2502.12455, Eqs.
 * 10–11) reports that without the STE the gates collapse: an inactive block's gate gets no gradient
 * from the LM loss while the L1 sparsity loss keeps pushing active gates down, so fewer and fewer
 * blocks stay on. A dense parent (`dense_parent`) is trained first; every other variant starts from
 * its final weights (of the same seed) and trains on the same tokens:
 * - `dense`: continued dense training (reference);
 * - `ste_t<τ>` / `no_ste_t<τ>`: DSMoE (8 blocks, λ = 1) with and without the STE, at τ = 0.5 and 0.65.
 *
 * The verdict reads, at τ = 0.5, the blocks active per token and the fraction of tokens with no
 * active block (measured from the gates on the validation batches) and the perplexity of the two
 * arms: "collapse" = without the STE fewer than half as many blocks active as with it, or more than
 * half of the tokens with no active block.
 *
 * Batches are a function of (seed, step): children continue their seed's stream after the parent's
 * steps (new windows), so every child of a seed sees exactly the same tokens.
 *
 * Scales (tokens per run = steps × batch_size × seq_len; children run the parent's schedule):
 * - tiny (tests): d_model 16, 1 layer, seq 16, 3 steps × 2, 1 seed, 6 runs.
 * - default (2 CPU cores): d_model 64, 2 layers, 4 heads, d_ff 256, seq 64, 200 steps × 16 × 64 =
 *   204,800 tokens per run, 3 seeds, 18 runs (3,600 steps). Measured cold on the 2-core dev machine:
 *   1 min 55 s on native (`auto` there), 9 min 4 s with `--backend wasm`.
 * - gpu: d_model 384, 6 layers, d_ff 1024, seq 256, 1500 steps × 32 × 256, 3 seeds.
 */
import { defineExperiment, type VariantPatch } from "../lib/experiment/mod.ts";
import { dsmoeSteReport } from "../lib/report/dsmoe.ts";
import { PARENT, sparseSpec } from "./_sparse_scales.ts";

const TAUS = [0.5, 0.65];

const dsmoe = (tau: number, ste: boolean): VariantPatch => ({
  init_from: PARENT,
  model: { ffn: { kind: "dsmoe", experts: 8, tau, lambda: 1, ste, rescale: true } },
});

const variants: Record<string, VariantPatch> = {
  ...Object.fromEntries(TAUS.flatMap((t) => [[`ste_t${t}`, dsmoe(t, true)], [`no_ste_t${t}`, dsmoe(t, false)]])),
};

export default defineExperiment({
  id: "dsmoe-ste",
  description: "DSMoE upcycled from a dense run, trained with and without the straight-through estimator on " +
    "the gates (τ = 0.5, 0.65): does the gate activation collapse without it, as the paper reports?",
  ...sparseSpec({ steps: 200, seeds: [0, 1, 2], report: dsmoeSteReport }, variants),
});
