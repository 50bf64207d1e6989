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
import type { ReportContext } from "../lib/experiment/define.ts";
import {
  fmt,
  fmtMeanStd,
  fmtPct,
  inferenceSpeedTable,
  labelledScatter,
  num,
  type Row,
  runMetaText,
  saveChart,
  T_CRIT,
  textTable,
  valLossCurves,
  variantSummary,
  welchT,
} from "../lib/plot/sparse.ts";
import { SPARSE_SCALES, sparseDefault } from "./_sparse_scales.ts";

const PARENT = { variant: "dense_parent" };
const TAUS = [0.5, 0.65];

const dsmoe = (tau: number, ste: boolean): VariantPatch => ({
  init_from: PARENT,
  model: { ffn: { kind: "dsmoe", experts: 8, tau, lambda: 1, ste, rescale: true } },
});

const variants: Record<string, VariantPatch> = {
  dense_parent: {},
  dense: { init_from: PARENT },
  ...Object.fromEntries(TAUS.flatMap((t) => [[`ste_t${t}`, dsmoe(t, true)], [`no_ste_t${t}`, dsmoe(t, false)]])),
};

/** The verdict line from the variant summary rows (pure; exported for tests). */
export function dsmoeSteVerdict(rows: Row[], meta: string, tau = 0.5): string {
  const by = new Map(rows.map((r) => [String(r.variant), r]));
  const on = by.get(`ste_t${tau}`), off = by.get(`no_ste_t${tau}`);
  const head = `verdict (dsmoe-ste; ${meta}):`;
  if (!on || !off || num(on.experts_active) === null || num(off.experts_active) === null) {
    return `${head} not enough completed runs (need ste_t${tau} and no_ste_t${tau})`;
  }
  const [aOn, aOff] = [on.experts_active as number, off.experts_active as number];
  const noneOff = num(off.no_expert) ?? 0;
  const collapse = aOff < 0.5 * aOn || noneOff > 0.5;
  const t = welchT(off, on);
  const pct = 100 * ((off.ppl_mean as number) / (on.ppl_mean as number) - 1);
  const worse = t === null ? pct > 2 : t > T_CRIT;
  return `${head} at τ=${tau} without the STE ${fmt(aOff, 2)} of 8 blocks active per token ` +
    `(${fmt(100 * noneOff, 1)}% of tokens with none), ppl ${fmt(off.ppl_mean, 3)}; with the STE ${fmt(aOn, 2)} ` +
    `blocks, ppl ${fmt(on.ppl_mean, 3)} (${pct >= 0 ? "+" : ""}${pct.toFixed(2)}% without, ` +
    `${t === null ? "t n/a" : `t ${t.toFixed(1)}`}): the paper's collapse without the STE is ` +
    `${collapse ? "observed" : "not observed"}${
      collapse ? (worse ? " and hurts perplexity" : " but perplexity is not clearly worse") : ""
    }` +
    ` at this scale (claim ${collapse && worse ? "supported" : "not supported"})`;
}

async function report(ctx: ReportContext): Promise<string[]> {
  const order = Object.keys(variants);
  const rows = await variantSummary(ctx, order);
  ctx.print(`\n${ctx.experiment}: DSMoE with / without the straight-through estimator, mean over seeds`);
  ctx.print(textTable(
    ["variant", "seeds", "val ppl", "blocks/token", "no-block tokens", "FFN active", "load CV"],
    rows.map((r) => [
      String(r.variant),
      String(r.seeds),
      fmtMeanStd(r.ppl_mean, r.ppl_std),
      fmt(r.experts_active, 2),
      fmt(r.no_expert, 3),
      fmtPct(r.ffn_active_pct),
      fmt(r.load_cv, 2),
    ]),
  ));
  ctx.print(inferenceSpeedTable(rows));
  ctx.print(dsmoeSteVerdict(rows, await runMetaText(ctx)));
  const files: string[] = [];
  // Per-layer activation: the collapse shows as blocks/token per layer.
  const layers = await ctx.query(
    `SELECT r.variant, r.seed, x.name, x.value FROM run_metrics x JOIN current_runs r USING (hash)
     WHERE r.experiment = $e AND r.status = 'completed' AND regexp_matches(x.name, '^experts_active_l[0-9]+$')`,
    { e: ctx.experiment },
  );
  const ppl = await ctx.query(
    `SELECT variant, seed, val_ppl FROM current_runs WHERE experiment = $e AND status = 'completed'`,
    { e: ctx.experiment },
  );
  const pplOf = new Map(ppl.rows.map((r) => [`${r.variant}/${r.seed}`, Number(r.val_ppl)]));
  const act = await ctx.query(
    `SELECT r.variant, r.seed, x.value FROM run_metrics x JOIN current_runs r USING (hash)
     WHERE r.experiment = $e AND r.status = 'completed' AND x.name = 'experts_active'`,
    { e: ctx.experiment },
  );
  if (act.rows.length) {
    files.push(
      ...await saveChart(
        ctx,
        "ppl_vs_blocks_active",
        labelledScatter(
          act.rows.map((r) => ({
            series: String(r.variant).startsWith("no_ste") ? "without STE" : "with STE",
            label: String(r.variant),
            x: Number(r.value),
            y: pplOf.get(`${r.variant}/${r.seed}`) ?? NaN,
          })).filter((p) => Number.isFinite(p.y)),
          {
            title: `${ctx.experiment}: perplexity vs DSMoE blocks active per token`,
            subtitle: "Blocks (of 8) above τ per token on the validation batches, all layers; mean over seeds. " +
              "Collapse = few blocks active without the STE.",
            xLabel: "Blocks active per token →",
            yLabel: "↑ Validation perplexity (lower is better)",
          },
        ),
      ),
    );
  }
  if (layers.rows.length) {
    files.push(
      ...await saveChart(
        ctx,
        "blocks_active_per_layer",
        labelledScatter(
          layers.rows.map((r) => {
            const layer = Number(String(r.name).slice("experts_active_l".length));
            return { series: String(r.variant), label: `${r.variant} l${layer}`, x: layer, y: Number(r.value) };
          }),
          {
            title: `${ctx.experiment}: DSMoE blocks active per token, per layer`,
            subtitle: "Measured from the gates on the validation batches; mean ± std over seeds.",
            xLabel: "Layer →",
            yLabel: "↑ Blocks active per token (of 8)",
          },
        ),
      ),
    );
  }
  files.push(...await valLossCurves(ctx, order));
  return files;
}

export default defineExperiment({
  id: "dsmoe-ste",
  description: "DSMoE upcycled from a dense run, trained with and without the straight-through estimator on " +
    "the gates (τ = 0.5, 0.65): does the gate activation collapse without it, as the paper reports?",
  seeds: [0, 1, 2],
  ...sparseDefault(200),
  variants,
  metrics: ["val_loss", "val_ppl"],
  report,
  scales: SPARSE_SCALES,
});
