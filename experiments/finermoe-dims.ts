/**
 * finermoe-dims: which dimension to make fine-grained (FineRMoE's Table 2). From a trained dense
 * parent (`dense_parent`, one per seed), four FineRMoE children with the code's defaults (gated shared
 * expert, joint softmax, T_I = 1, R_I = 1, R_O = 2, balance 0.001) differ only in granularity
 * (G_I, G_O), the paper's settings scaled to d_ff = 4·d_model:
 * - `fg_none` (1, 1): 2 full-width experts, 1 active;
 * - `fg_inter` (8, 1): 16 experts of width d_ff/8, 1 active;
 * - `fg_out` (1, 2): 4 full-width experts writing d_model/2 each, 2 active (one per output slice);
 * - `fg_both` (8, 2): 32 experts of width d_ff/8 writing d_model/2, 2 active;
 * plus `dense` (continued dense training). As in the paper the variants are not compute-matched: the
 * report prints activated parameters (measured from the routing) beside perplexity.
 *
 * The paper's claims: output-only beats intermediate-only, and both together is best. The verdict
 * checks both from the perplexity means (with Welch's t where seeds allow).
 *
 * Parents: each child starts from the `dense_parent` of its own seed; batches are a function of (seed,
 * step) and children continue the stream after the parent's steps, so all children of a seed see exactly
 * the same (new) tokens. Routed training uses the sparse form.
 *
 * Scales (tokens per run = steps × batch_size × seq_len):
 * - tiny (tests): d_model 16, 1 layer, seq 16, 3 steps × 2, 1 seed, 6 runs.
 * - default (2 CPU cores): d_model 64, 2 layers, 4 heads, d_ff 256, seq 64, 160 steps × 16 × 64 =
 *   163,840 tokens per run, 2 seeds, 12 runs (1,920 steps). Measured cold on the 2-core dev machine:
 *   2 min 3 s on native (`auto` there), 6 min 48 s with `--backend wasm`.
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

const fine = (g_i: number, g_o: number): VariantPatch => ({
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
    },
  },
});

const variants: Record<string, VariantPatch> = {
  dense_parent: {},
  dense: { init_from: PARENT },
  fg_none: fine(1, 1),
  fg_inter: fine(8, 1),
  fg_out: fine(1, 2),
  fg_both: fine(8, 2),
};

/** "a < b" judged on perplexity: `true` (clearly or, without a t, by the mean), `false`, or null (missing). */
function lower(a: Row | undefined, b: Row | undefined): { yes: boolean; t: number | null } | null {
  if (!a || !b || num(a.ppl_mean) === null || num(b.ppl_mean) === null) return null;
  const t = welchT(a, b);
  return { yes: t === null ? (a.ppl_mean as number) < (b.ppl_mean as number) : t < -T_CRIT, t };
}

/** "best", or why not: the variants fg_both is not clearly better than (lowest mean but not significant, or not lowest). */
function bothText(both: Row, others: Row[], judged: { yes: boolean; t: number | null }[]): string {
  const fails = others.map((o, i) => ({ o, j: judged[i] })).filter((x) => !x.j.yes);
  if (!fails.length) return "best";
  const lowest = others.every((o) => (both.ppl_mean as number) < (o.ppl_mean as number));
  const list = fails.map((x) => `${x.o.variant}${x.j.t === null ? "" : ` t ${x.j.t.toFixed(1)}`}`).join(", ");
  return lowest ? `lowest, but not significantly below ${list}` : `not best (not below ${list})`;
}

/** The verdict line from the variant summary rows (pure; exported for tests). */
export function finermoeDimsVerdict(rows: Row[], meta: string): string {
  const head = `verdict (finermoe-dims; ${meta}):`;
  const by = new Map(rows.map((r) => [String(r.variant), r]));
  const fg = ["fg_none", "fg_inter", "fg_out", "fg_both"].map((v) => by.get(v));
  if (fg.some((r) => !r || num(r.ppl_mean) === null)) return `${head} not enough completed runs (need all four fg_*)`;
  const [none, inter, out, both] = fg as Row[];
  const outVsInter = lower(out, inter)!;
  const bothBest = [none, inter, out].map((o) => lower(both, o)!);
  const ranked = [none, inter, out, both].sort((a, b) => (a.ppl_mean as number) - (b.ppl_mean as number));
  const tTxt = (t: number | null) => (t === null ? "t n/a" : `t ${t.toFixed(1)}`);
  const supported = outVsInter.yes && bothBest.every((b) => b.yes);
  return `${head} ppl ranking ${
    ranked.map((r) => `${r.variant} ${fmt(r.ppl_mean, 3)} (${fmt(r.ffn_active_pct, 0)}% FFN active)`).join(" < ")
  }; output-only vs intermediate-only ${outVsInter.yes ? "better" : "not better"} (${tTxt(outVsInter.t)}); ` +
    `both ${bothText(both, [none, inter, out], bothBest)}: claim (output FG > intermediate FG, both best) ` +
    `${supported ? "supported" : "not supported"} at this scale${
      [outVsInter, ...bothBest].every((b) => b.t === null) ? " (by the means only)" : ""
    }`;
}

async function report(ctx: ReportContext): Promise<string[]> {
  const order = Object.keys(variants);
  const rows = await variantSummary(ctx, order);
  ctx.print(`\n${ctx.experiment}: fine-grained dimension vs quality and activated parameters, mean over seeds`);
  ctx.print(textTable(
    ["variant", "G_I", "G_O", "seeds", "val ppl", "params", "active params", "FFN active", "experts/token", "load CV"],
    rows.map((r) => {
      const v = variants[String(r.variant)]?.model?.ffn as Record<string, unknown> | undefined;
      return [
        String(r.variant),
        v?.g_i === undefined ? "-" : String(v.g_i),
        v?.g_o === undefined ? "-" : String(v.g_o),
        String(r.seeds),
        fmtMeanStd(r.ppl_mean, r.ppl_std),
        fmt(r.params_total, 0),
        fmt(r.params_active, 0),
        fmtPct(r.ffn_active_pct),
        fmt(r.experts_active, 2),
        fmt(r.load_cv, 2),
      ];
    }),
  ));
  ctx.print(inferenceSpeedTable(rows));
  ctx.print(finermoeDimsVerdict(rows, await runMetaText(ctx)));
  const files = await pplVsActiveParams(ctx, {
    series: (v) => v === "dense" ? "dense (continued)" : "FineRMoE",
    subtitle: "Which dimension is fine-grained: none, intermediate (G_I), output (G_O), both. " +
      "Same dense parent and tokens; mean ± std over seeds.",
  });
  files.push(...await valLossCurves(ctx, order));
  return files;
}

export default defineExperiment({
  id: "finermoe-dims",
  description: "FineRMoE upcycled from a dense run with no / intermediate / output / both dimensions " +
    "fine-grained: perplexity beside activated parameters.",
  seeds: [0, 1],
  ...sparseDefault(160),
  variants,
  metrics: ["val_loss", "val_ppl"],
  report,
  scales: SPARSE_SCALES,
});
