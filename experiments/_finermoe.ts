/**
 * The FineRMoE child shared by finermoe-routers and finermoe-granularity: upcycled from the seed's
 * `dense_parent` with the code's defaults (R_I = 1, R_O = 2, T_I = 1, joint softmax, gated shared expert,
 * balance 0.001, sparse training). (The leading `_` keeps this helper out of the experiment list.)
 */
import type { FinermoeOptions, VariantPatch } from "../lib/experiment/mod.ts";
import { PARENT } from "./_sparse_scales.ts";

/** A FineRMoE child at (G_I, G_O) with extra options. */
export function finermoe(g_i: number, g_o: number, extra: Partial<FinermoeOptions> = {}): VariantPatch {
  return {
    init_from: PARENT,
    model: {
      ffn: {
        kind: "finermoe",
        g_i,
        r_i: 1,
        g_o,
        r_o: 2,
        t_i: 1,
        combine: "joint_softmax",
        shared_expert: "gated",
        balance_coef: 0.001,
        train_compute: "sparse",
        ...extra,
      },
    },
  };
}
