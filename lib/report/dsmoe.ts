/**
 * Reports of the DSMoE (arXiv 2502.12455) experiments: experiments/dsmoe-tau.ts (perplexity vs activated parameters over τ and λ, against top-k MoE) and experiments/dsmoe-ste.ts (does DSMoE need its straight-through estimator?).
 * Each prints a table of lib/report/sparse.ts's variant summary, the inference speeds, a one-line verdict on
 * the paper's claim derived mechanically from the table, and draws its plots.
 *
 * @module
 */
import type { ReportContext } from "../experiment/define.ts";
import { labelledScatter } from "../plot/scatter.ts";
import { saveChart, valLossCurves } from "./charts.ts";
import { pplVsActiveParams, printSparseSummary } from "./sparse.ts";
import { fmt, fmtPct, meanStd, num, type Row, T_CRIT, welchT } from "./stats.ts";

// ---- dsmoe-tau ---------------------------------------------------------------------------------

/** Method family of a variant, for the plot's series. */
function family(variant: string): string {
  if (variant.startsWith("dsmoe_t0.5_l")) return "DSMoE τ=0.5, λ varied";
  if (variant.startsWith("dsmoe")) return "DSMoE λ=1, τ varied";
  if (variant.startsWith("topk")) return "top-k MoE (split-upcycled)";
  return variant === "dense" ? "dense (continued)" : "dense parent";
}

/** The verdict line from the variant summary rows (pure; exported for tests). */
export function dsmoeTauVerdict(rows: Row[], meta: string): string {
  const by = new Map(rows.map((r) => [String(r.variant), r]));
  const d = by.get("dense"), m = by.get("dsmoe_t0.5");
  const head = `verdict (dsmoe-tau; ${meta}):`;
  if (!d || !m || num(m.ppl_mean) === null || num(d.ppl_mean) === null) {
    return `${head} not enough completed runs (need dense and dsmoe_t0.5)`;
  }
  const t = welchT(m, d);
  const pct = 100 * ((m.ppl_mean as number) / (d.ppl_mean as number) - 1);
  const act = num(m.ffn_active_pct);
  const sameQuality = t === null ? Math.abs(pct) <= 2 : t <= T_CRIT;
  const sparse = act !== null && act < 90;
  const topks = rows.filter((r) => String(r.variant).startsWith("topk") && num(r.ffn_active_pct) !== null);
  const near = act === null
    ? undefined
    : topks.sort((a, b) =>
      Math.abs((a.ffn_active_pct as number) - act) - Math.abs((b.ffn_active_pct as number) - act)
    )[0];
  const vsTopk = near
    ? `; ${near.variant} (${fmt(near.ffn_active_pct, 0)}% FFN active) ppl ${fmt(near.ppl_mean, 3)}: DSMoE ${
      (m.ppl_mean as number) < (near.ppl_mean as number) ? "better" : "worse"
    }`
    : "";
  return `${head} DSMoE at τ=0.5 reaches ppl ${fmt(m.ppl_mean, 3)} with ${fmt(act, 1)}% of the dense FFN's ` +
    `parameters active per token vs dense ppl ${fmt(d.ppl_mean, 3)} (${pct >= 0 ? "+" : ""}${pct.toFixed(2)}%` +
    `${t === null ? ", t n/a" : `, t ${t.toFixed(1)}`})${vsTopk}: claim (dense quality at fewer active ` +
    `parameters) ${sameQuality && sparse ? "supported" : "not supported"} at this scale` +
    (sparse ? "" : " (DSMoE did not sparsify: ≥ 90% active)");
}

/** The dsmoe-tau report: its table, the inference-speed table, the verdict and the plots. */
export async function dsmoeTauReport(ctx: ReportContext): Promise<string[]> {
  const order = Object.keys(ctx.variants);
  await printSparseSummary(ctx, {
    title: `\n${ctx.experiment}: val perplexity vs activated parameters (measured from the gates), mean over seeds`,
    header: [
      "variant",
      "seeds",
      "val ppl",
      "params",
      "active params",
      "FFN active",
      "experts/token",
      "no-expert",
      "load CV",
    ],
    row: (r) => [
      String(r.variant),
      String(r.seeds),
      meanStd(r.ppl_mean, r.ppl_std),
      fmt(r.params_total, 0),
      fmt(r.params_active, 0),
      fmtPct(r.ffn_active_pct),
      fmt(r.experts_active, 2),
      fmt(r.no_expert, 3),
      fmt(r.load_cv, 2),
    ],
    verdict: dsmoeTauVerdict,
  });
  const files = await pplVsActiveParams(ctx, {
    series: family,
    subtitle: "All variants start from the same dense parent and train on the same tokens. " +
      "Activated parameters measured from the routing on the validation batches; mean over seeds.",
  });
  files.push(...await valLossCurves(ctx, order, "Children count steps from their start."));
  return files;
}

// ---- dsmoe-ste ---------------------------------------------------------------------------------

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

/** The dsmoe-ste report: its table, the inference-speed table, the verdict and the plots. */
export async function dsmoeSteReport(ctx: ReportContext): Promise<string[]> {
  const order = Object.keys(ctx.variants);
  await printSparseSummary(ctx, {
    title: `\n${ctx.experiment}: DSMoE with / without the straight-through estimator, mean over seeds`,
    header: ["variant", "seeds", "val ppl", "blocks/token", "no-block tokens", "FFN active", "load CV"],
    row: (r) => [
      String(r.variant),
      String(r.seeds),
      meanStd(r.ppl_mean, r.ppl_std),
      fmt(r.experts_active, 2),
      fmt(r.no_expert, 3),
      fmtPct(r.ffn_active_pct),
      fmt(r.load_cv, 2),
    ],
    verdict: dsmoeSteVerdict,
  });
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
  files.push(...await valLossCurves(ctx, order, "Children count steps from their start."));
  return files;
}
