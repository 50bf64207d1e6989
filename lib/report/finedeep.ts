/**
 * Reports of the Finedeep experiments (experiments/ablation-mk.ts, finedeep-vs-dense.ts, routing.ts,
 * nsar.ts): each prints the summary table of its ONE SQL query (lib/report/finedeep_sql.ts), a verdict line
 * (that table's numbers; the claims' words from the ledger, lib/report/ledger_verdict.ts) and draws its plots.
 * Statistics: lib/report/stats.ts.
 *
 * This module is not part of any run hash (only the code on a run's path is), so editing a report
 * never invalidates cached runs.
 *
 * @module
 */
import type { ReportContext } from "../experiment/define.ts";
import { lineWithErrorBars, metricByVariant, type MetricByVariantOptions, type SeriesPoint } from "../plot/charts.ts";
import { histogramCurves, type HistPoint, withReferenceLines } from "../plot/activations.ts";
import { HIST_BINS } from "../core/analysis.ts";
import { saveChart, saveChartOf, valLossCurves } from "./charts.ts";
import { experimentLedger } from "./ledger_verdict.ts";
import { meanStd, num, type Row, runMeta, signed, textTable } from "./stats.ts";
import {
  ablationSql,
  ablationVerdict,
  fvdSql,
  fvdVerdict,
  nsarSql,
  nsarVerdict,
  routingSql,
  routingVerdict,
} from "./finedeep_sql.ts";

// ---- plotting helpers ---------------------------------------------------------------------------

/**
 * The chart `chart` of one end-of-run value (`run_metrics` name `metric`) by variant ({@link metricByVariant}),
 * completed current runs, finite values; no files when no run has the value.
 */
async function valueByVariant(
  ctx: ReportContext,
  metric: string,
  opts: MetricByVariantOptions & { chart: string },
): Promise<string[]> {
  const r = await ctx.query(
    `SELECT r.variant, r.seed, x.value FROM run_metrics x JOIN current_runs r USING (hash)
     WHERE r.experiment = $e AND r.status = 'completed' AND x.name = $n AND isfinite(x.value)`,
    { e: ctx.experiment, n: metric },
  );
  if (!r.rows.length) return [];
  const { chart, ...chartOpts } = opts;
  const values = r.rows.map((x) => ({ variant: String(x.variant), seed: Number(x.seed), value: Number(x.value) }));
  return await saveChart(ctx, chart, metricByVariant(values, chartOpts));
}

/** variant, name, value of the run_metrics whose name matches `pattern` (a regex), completed current runs. */
function metricsMatching(ctx: ReportContext, pattern: string) {
  return ctx.query(
    `SELECT r.variant, x.name, x.value FROM run_metrics x JOIN current_runs r USING (hash)
     WHERE r.experiment = $e AND r.status = 'completed' AND regexp_matches(x.name, $p)`,
    { e: ctx.experiment, p: pattern },
  );
}

/** NSAR_τ of SiLU(gate) vs τ, one line per variant (mean ± std over seeds). */
async function nsarVsTau(ctx: ReportContext, order?: string[]): Promise<string[]> {
  const r = await metricsMatching(ctx, "^nsar_gate_[0-9.]+$");
  if (!r.rows.length) return [];
  const pts = r.rows.map((x) => ({
    series: String(x.variant),
    x: Number(String(x.name).slice("nsar_gate_".length)),
    y: Number(x.value),
  }));
  return await saveChart(
    ctx,
    "nsar_vs_tau",
    lineWithErrorBars(pts, {
      title: `${ctx.experiment}: non-sparse activation rate of SiLU(gate)`,
      subtitle: "NSAR_τ = fraction of |SiLU(x·W_gate)| > τ on the validation batches, all layers pooled. " +
        "Higher = less sparse. Mean ± std over seeds.",
      xLabel: "Threshold τ →",
      yLabel: "↑ NSAR_τ",
      logX: true,
      series: order,
    }),
  );
}

/** Natural variant order used in the plots: dense first, then by M·K line and M. */
function variantOrder(rows: Row[]): string[] {
  return rows.map((r) => String(r.variant));
}

// ---- reports ------------------------------------------------------------------------------------

/** ablation-mk: table, verdict, plots (val ppl vs M per M·K line, val loss curves, NSAR by variant / vs τ). */
export async function ablationReport(ctx: ReportContext): Promise<string[]> {
  const sql = ablationSql(ctx.experiment);
  const rows = (await ctx.query(sql)).rows;
  const meta = await runMeta(ctx);
  ctx.print(`\n${ctx.experiment}: val perplexity by M (sub-layers) x K (experts per sub-layer), mean ± std over seeds`);
  ctx.print(textTable(
    ["variant", "M", "K", "seeds", "val ppl", "vs dense", "t", "NSAR_0.1", "params", "FLOPs", "best of line"],
    rows.map((r) => [
      String(r.variant),
      r.m == null ? "-" : String(r.m),
      r.k == null ? "-" : String(r.k),
      String(r.seeds),
      meanStd(r.ppl_mean, r.ppl_std, 3),
      signed(r.ppl_vs_dense_pct, 2, "%"),
      signed(r.t_vs_dense, 1),
      meanStd(r.nsar_mean, r.nsar_std, 3),
      signed(r.params_vs_dense_pct, 2, "%"),
      signed(r.flops_vs_dense_pct, 2, "%"),
      r.best_of_line ? "*" : "",
    ]),
  ));
  ctx.print(ablationVerdict(rows, meta, await experimentLedger(ctx)));
  const order = variantOrder(rows);
  const files: string[] = [];
  const runs = await ctx.query(
    `SELECT variant, model_ffn_kind AS kind, model_ffn_m AS m, model_ffn_k AS k, val_ppl FROM current_runs
     WHERE experiment = $e AND status = 'completed' AND isfinite(val_ppl)`,
    { e: ctx.experiment },
  );
  const pts: SeriesPoint[] = runs.rows.filter((r) => r.kind === "finedeep").map((r) => ({
    series: `M·K = ${Number(r.m) * Number(r.k)}`,
    x: Number(r.m),
    y: Number(r.val_ppl),
  }));
  if (pts.length) {
    const dense = rows.find((r) => r.m == null);
    let chart = lineWithErrorBars(pts, {
      title: `${ctx.experiment}: validation perplexity vs depth M at fixed M·K`,
      subtitle:
        "K = M·K / M experts per sub-layer; mean ± sample std over seeds; dashed: dense baseline (dotted ± std).",
      xLabel: "Sub-layers M (log scale) →",
      yLabel: "↑ Validation perplexity (lower is better)",
      logX: true,
    });
    if (dense && num(dense.ppl_mean) !== null) {
      chart = withReferenceLines(chart, [{ y: dense.ppl_mean as number, std: num(dense.ppl_std), label: "dense" }]);
    }
    files.push(...await saveChart(ctx, "ppl_vs_m", chart));
  }
  files.push(...await valLossCurves(ctx, order));
  files.push(
    ...await valueByVariant(ctx, "nsar_gate_0.1", {
      chart: "nsar_by_variant",
      title: `${ctx.experiment}: NSAR_0.1 of SiLU(gate) by variant`,
      subtitle: "Fraction of |SiLU(gate)| > 0.1 on the validation batches (higher = less sparse); mean ± std.",
      label: "NSAR_0.1 →",
      order,
    }),
  );
  files.push(...await nsarVsTau(ctx, order));
  return files;
}

/** routing: table, verdict, plots (val loss curves, gate mean/spread by variant, NSAR vs τ). */
export async function routingReport(ctx: ReportContext): Promise<string[]> {
  const rows = (await ctx.query(routingSql(ctx.experiment))).rows;
  const meta = await runMeta(ctx);
  ctx.print(`\n${ctx.experiment}: routing score source x gate normalisation, mean ± std over seeds`);
  ctx.print(textTable(
    [
      "rank",
      "variant",
      "score",
      "norm_fn",
      "seeds",
      "val ppl",
      "vs output-sigmoid",
      "t",
      "vs dense",
      "t",
      "gate mean ± spread",
    ],
    rows.map((r) => [
      String(r.rank),
      String(r.variant),
      String(r.score ?? "-"),
      String(r.norm_fn ?? "-"),
      String(r.seeds),
      meanStd(r.ppl_mean, r.ppl_std, 3),
      signed(r.ppl_vs_paper_pct, 2, "%"),
      signed(r.t_vs_paper, 1),
      signed(r.ppl_vs_dense_pct, 2, "%"),
      signed(r.t_vs_dense, 1),
      meanStd(r.gate_mean, r.gate_std, 3),
    ]),
  ));
  ctx.print(routingVerdict(rows, meta, await experimentLedger(ctx)));
  const order = variantOrder(rows);
  const files = [...await valLossCurves(ctx, order)];
  for (const [name, label] of [["router_mean", "Mean gate value"], ["router_std", "Gate spread (std over tokens)"]]) {
    files.push(
      ...await valueByVariant(ctx, name, {
        chart: `${name}_by_variant`,
        title: `${ctx.experiment}: ${label.toLowerCase()} by variant`,
        subtitle: "Router gate values on the validation batches, all layers, sub-layers and experts; mean ± std.",
        label: `${label} →`,
        order,
      }),
    );
  }
  files.push(...await nsarVsTau(ctx, order));
  return files;
}

/** finedeep-vs-dense: table, verdict, plots (val ppl and NSAR vs parameters, one line per FFN kind). */
export async function fvdReport(ctx: ReportContext): Promise<string[]> {
  const rows = (await ctx.query(fvdSql(ctx.experiment))).rows;
  const meta = await runMeta(ctx);
  ctx.print(`\n${ctx.experiment}: dense vs Finedeep at matched parameters and FLOPs, per model size`);
  ctx.print(textTable(
    [
      "n_layers",
      "d_model",
      "params",
      "dense ppl",
      "Finedeep ppl",
      "change",
      "t",
      "NSAR_0.1 dense",
      "NSAR_0.1 Finedeep",
    ],
    rows.map((r) => [
      String(r.n_layers),
      String(r.d_model),
      String(r.dense_params),
      meanStd(r.dense_ppl_mean, r.dense_ppl_std, 3),
      meanStd(r.finedeep_ppl_mean, r.finedeep_ppl_std, 3),
      signed(r.ppl_change_pct, 2, "%"),
      signed(r.t, 1),
      meanStd(r.dense_nsar, null, 3),
      meanStd(r.finedeep_nsar, null, 3),
    ]),
  ));
  ctx.print(fvdVerdict(rows, meta, await experimentLedger(ctx)));
  const runs = await ctx.query(
    `SELECT r.model_ffn_kind AS kind, r.params, r.val_ppl, x.value AS nsar FROM current_runs r
     LEFT JOIN run_metrics x ON x.hash = r.hash AND x.name = 'nsar_gate_0.1'
     WHERE r.experiment = $e AND r.status = 'completed' AND isfinite(r.val_ppl)`,
    { e: ctx.experiment },
  );
  const files: string[] = [];
  if (runs.rows.length) {
    const pts = (y: string) =>
      runs.rows.filter((r) => num(r[y]) !== null).map((r) => ({
        series: String(r.kind),
        x: Number(r.params),
        y: Number(r[y]),
      }));
    files.push(
      ...await saveChart(
        ctx,
        "ppl_vs_params",
        lineWithErrorBars(pts("val_ppl"), {
          title: `${ctx.experiment}: validation perplexity vs model size`,
          subtitle: "Dense and Finedeep at matched parameters/FLOPs per size; mean ± sample std over seeds.",
          xLabel: "Parameters (log scale) →",
          yLabel: "↑ Validation perplexity (lower is better)",
          logX: true,
        }),
      ),
      ...await saveChart(
        ctx,
        "nsar_vs_params",
        lineWithErrorBars(pts("nsar"), {
          title: `${ctx.experiment}: NSAR_0.1 of SiLU(gate) vs model size`,
          subtitle: "Fraction of |SiLU(gate)| > 0.1 on the validation batches (higher = less sparse).",
          xLabel: "Parameters (log scale) →",
          yLabel: "↑ NSAR_0.1",
          logX: true,
        }),
      ),
    );
  }
  files.push(...await valLossCurves(ctx));
  return files;
}

/** nsar: table, verdict, plots (histograms per layer, NSAR per layer, NSAR vs τ, NSAR per Finedeep sub-layer). */
export async function nsarReport(ctx: ReportContext): Promise<string[]> {
  const rows = (await ctx.query(nsarSql(ctx.experiment))).rows;
  const meta = await runMeta(ctx);
  ctx.print(`\n${ctx.experiment}: NSAR_τ (fraction of |a| > τ), dense vs Finedeep, mean ± std over seeds`);
  ctx.print(textTable(
    ["metric", "dense", "Finedeep", "diff", "t"],
    rows.map((r) => [
      String(r.metric),
      meanStd(r.dense_mean, r.dense_std, 4),
      meanStd(r.finedeep_mean, r.finedeep_std, 4),
      signed(r.diff, 4),
      signed(r.t, 1),
    ]),
  ));
  ctx.print(nsarVerdict(rows, meta, await experimentLedger(ctx)));
  const files: string[] = [];
  const hist = await ctx.query(
    `SELECT r.variant, x.name, avg(x.value) AS value FROM run_metrics x JOIN current_runs r USING (hash)
     WHERE r.experiment = $e AND r.status = 'completed' AND x.name LIKE 'hist_gate_%' GROUP BY ALL`,
    { e: ctx.experiment },
  );
  if (hist.rows.length) {
    const pts: HistPoint[] = hist.rows.map((r) => {
      const m = /^hist_gate_(?:l(\d+)_)?b(\d+)$/.exec(String(r.name))!;
      return {
        series: String(r.variant),
        panel: m[1] === undefined ? "all layers" : `layer ${m[1]}`,
        x: HIST_BINS.lo + Number(m[2]) * HIST_BINS.width,
        y: Number(r.value),
      };
    });
    files.push(
      ...await saveChart(
        ctx,
        "activation_histograms",
        histogramCurves(pts, {
          title: `${ctx.experiment}: distribution of SiLU(gate) activations per layer`,
          subtitle: `Fraction of values per bin of width ${HIST_BINS.width} (log scale), mean over seeds; ` +
            `last bin: ≥ ${(HIST_BINS.lo + HIST_BINS.count * HIST_BINS.width).toFixed(2)}.`,
          xLabel: "SiLU(x·W_gate) →",
        }),
      ),
    );
  }
  const perLayer = await metricsMatching(ctx, "^nsar_gate_0\\.1_l[0-9]+$");
  files.push(
    ...await saveChartOf(ctx, perLayer.rows, {
      name: "nsar_per_layer",
      draw: (rows) =>
        lineWithErrorBars(
          rows.map((r) => ({
            series: String(r.variant),
            x: Number(/_l(\d+)$/.exec(String(r.name))![1]),
            y: Number(r.value),
          })),
          {
            title: `${ctx.experiment}: NSAR_0.1 of SiLU(gate) per layer`,
            subtitle: "Fraction of |SiLU(gate)| > 0.1 per layer (Finedeep: its M·K experts pooled); mean ± std.",
            xLabel: "Layer →",
            yLabel: "↑ NSAR_0.1",
          },
        ),
    }),
  );
  const perSub = await metricsMatching(ctx, "^nsar_gate_0\\.1_l[0-9]+_m[0-9]+$");
  files.push(
    ...await saveChartOf(ctx, perSub.rows, {
      name: "nsar_per_sublayer",
      draw: (rows) =>
        lineWithErrorBars(
          rows.map((r) => {
            const m = /_l(\d+)_m(\d+)$/.exec(String(r.name))!;
            return { series: `${r.variant} layer ${m[1]}`, x: Number(m[2]), y: Number(r.value) };
          }),
          {
            title: `${ctx.experiment}: NSAR_0.1 per Finedeep sub-layer`,
            subtitle: "Within each layer, sub-layer m = 0..M-1 (applied in order); mean ± std over seeds.",
            xLabel: "Sub-layer m →",
            yLabel: "↑ NSAR_0.1",
          },
        ),
    }),
  );
  files.push(...await nsarVsTau(ctx));
  return files;
}
