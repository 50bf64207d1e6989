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
import type { ReportContext } from "../lib/experiment/define.ts";
import {
  fmt,
  fmtMeanStd,
  fmtPct,
  inferenceSpeedTable,
  num,
  pplVsActiveParams,
  type Row,
  runMetaText,
  T_CRIT,
  textTable,
  valLossCurves,
  variantSummary,
  welchT,
} from "../lib/plot/sparse.ts";
import { SPARSE_SCALES, sparseDefault } from "./_sparse_scales.ts";

const PARENT = { variant: "dense_parent" };

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
  dense_parent: { single_seed: true },
  dense: { init_from: PARENT },
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

/** The verdict line from the variant summary rows (pure; exported for tests). */
export function finermoeUpcycleVerdict(rows: Row[], meta: string): string {
  const head = `verdict (finermoe-upcycle; ${meta}):`;
  const by = new Map(rows.map((r) => [String(r.variant), r]));
  const f = by.get("finermoe");
  const others = ["dense", "finermoe_no_shared", "copy_top2", "split_top2"].map((v) => by.get(v)).filter((r) =>
    r && num(r.ppl_mean) !== null
  ) as Row[];
  if (!f || num(f.ppl_mean) === null || others.length === 0) {
    return `${head} not enough completed runs (need finermoe and at least one baseline)`;
  }
  const parts = others.map((o) => {
    const t = welchT(f, o);
    const pct = 100 * ((f.ppl_mean as number) / (o.ppl_mean as number) - 1);
    const better = t === null ? pct < 0 : t < -T_CRIT;
    return { v: String(o.variant), pct, t, better };
  });
  const wins = parts.filter((p) => p.better).length;
  return `${head} FineRMoE ppl ${fmt(f.ppl_mean, 3)} with ${fmt(f.ffn_active_pct, 0)}% of the dense FFN active; ` +
    parts.map((p) =>
      `vs ${p.v} ${p.pct >= 0 ? "+" : ""}${p.pct.toFixed(2)}% (${p.t === null ? "t n/a" : `t ${p.t.toFixed(1)}`})`
    ).join(", ") +
    `: better than ${wins}/${parts.length} baselines${parts.every((p) => p.t === null) ? " (by the mean only)" : ""}` +
    ` — claim (FineRMoE beats dense continued training and copy/split upcycling) ` +
    `${wins === parts.length ? "supported" : "not supported"} at this scale`;
}

async function report(ctx: ReportContext): Promise<string[]> {
  const order = Object.keys(variants);
  const rows = await variantSummary(ctx, order);
  ctx.print(`\n${ctx.experiment}: upcycled from the same dense parent, same tokens, mean over seeds`);
  ctx.print(textTable(
    ["variant", "seeds", "val ppl", "vs dense", "t", "params", "active params", "FFN active", "load CV"],
    rows.map((r) => {
      const d = rows.find((x) => x.variant === "dense");
      const t = d && r !== d ? welchT(r, d) : null;
      const pct = d && num(d.ppl_mean) !== null && num(r.ppl_mean) !== null
        ? 100 * ((r.ppl_mean as number) / (d.ppl_mean as number) - 1)
        : null;
      return [
        String(r.variant),
        String(r.seeds),
        fmtMeanStd(r.ppl_mean, r.ppl_std),
        pct === null ? "-" : `${pct >= 0 ? "+" : ""}${pct.toFixed(2)}%`,
        t === null ? "-" : t.toFixed(1),
        fmt(r.params_total, 0),
        fmt(r.params_active, 0),
        fmtPct(r.ffn_active_pct),
        fmt(r.load_cv, 2),
      ];
    }),
  ));
  ctx.print(inferenceSpeedTable(rows));
  ctx.print(finermoeUpcycleVerdict(rows, await runMetaText(ctx)));
  const files = await pplVsActiveParams(ctx, {
    subtitle: "Children of one dense parent trained on the same tokens; activated parameters measured from the " +
      "routing on the validation batches.",
  });
  files.push(...await valLossCurves(ctx, order));
  return files;
}

export default defineExperiment({
  id: "finermoe-upcycle",
  description: "From one dense parent per seed: continued dense training vs FineRMoE (with / without shared " +
    "expert) vs copy-upcycled and split-upcycled top-2 MoE, on the same tokens.",
  seeds: [0, 1, 2],
  ...sparseDefault(160),
  variants,
  metrics: ["val_loss", "val_ppl"],
  report,
  scales: SPARSE_SCALES,
});
