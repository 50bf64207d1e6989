/**
 * Slurm test fixture: a parent -> child sweep of the fault suite's toy model (1 layer, d_model 16, four Blake
 * poems): a dense parent and two children that start from its final weights (continued dense training and a
 * top-2 MoE upcycled from it), one seed. Checkpoints every 2 steps so a kill lands between checkpoints.
 */
import { defineExperiment } from "../../../../experiment/mod.ts";
import toy from "../../../../cli/faults/testdata/experiments/faults.ts";

export default defineExperiment({
  ...toy,
  id: "slurm-chain",
  description: "Slurm test fixture: a dense parent and two children trained from its weights.",
  variants: {
    parent: {},
    cont: { init_from: { variant: "parent" } },
    moe: {
      init_from: { variant: "parent" },
      model: { ffn: { kind: "topk_moe", experts: 4, top_k: 2 } },
    },
  },
  slurm: { signal_s: 30 },
});
