/**
 * Report pieces shared by the sparse-model experiments (experiments/dsmoe-tau.ts, dsmoe-ste.ts,
 * finermoe-upcycle.ts, finermoe-dims.ts): one SQL query that summarises every variant of an
 * experiment (quality beside total and activated parameters, measured from the routing by
 * lib/models/sparse_metrics.ts), a labelled scatter chart (perplexity vs activated parameters), a
 * validation-loss-curve chart, and Welch's t for the verdicts.
 *
 * @module
 */
import { join } from "node:path";
import * as Plot from "@observablehq/plot";
import type { ReportContext } from "../experiment/define.ts";
import { lineWithErrorBars, type SeriesPoint } from "./charts.ts";
import { renderChart, savePlot } from "./render.ts";

/** A result row (as the store returns it). */
export type Row = Record<string, unknown>;

/** |t| above this counts as a clear difference (two-sided 5%, ~4 degrees of freedom). */
export const T_CRIT = 2.78;

const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** A finite number or null. */
export function num(v: unknown): number | null {
  const x = typeof v === "bigint" ? Number(v) : v;
  return typeof x === "number" && Number.isFinite(x) ? x : null;
}

/**
 * One row per variant of the experiment's completed current runs: `variant`, `seeds`, `ppl_mean`,
 * `ppl_std`, `loss_mean`, `params_total`, `params_active`, `flops_active`, `experts_active`,
 * `load_cv`, `no_expert` (fraction of tokens that ran no routed expert), `prefill_tps` and `decode_tps`
 * (measured inference tokens/s at batch 1, mean over seeds) and `ffn_active_pct`:
 * activated FFN parameters per token as a percentage of the dense FFN (3·d_model·d_ff per layer),
 * where the non-FFN parameters are taken from the experiment's dense runs (null without one).
 */
export function variantSummarySql(experiment: string): string {
  return `WITH r AS (
  SELECT hash, variant, model_ffn_kind AS kind, val_ppl, val_loss, params,
    prefill_tokens_per_sec, decode_tokens_per_sec,
    3.0 * model_d_model * model_d_ff * model_n_layers AS dense_ffn
  FROM current_runs WHERE experiment = ${lit(experiment)} AND status = 'completed'),
x AS (
  SELECT hash,
    max(value) FILTER (WHERE name = 'params_total') AS params_total,
    max(value) FILTER (WHERE name = 'params_active') AS params_active,
    max(value) FILTER (WHERE name = 'flops_per_token_active') AS flops_active,
    max(value) FILTER (WHERE name = 'experts_active') AS experts_active,
    max(value) FILTER (WHERE name = 'expert_load_cv') AS load_cv,
    max(value) FILTER (WHERE name = 'tokens_no_expert') AS no_expert
  FROM run_metrics GROUP BY hash),
nf AS (SELECT min(params - dense_ffn) AS non_ffn FROM r WHERE kind = 'dense')
SELECT variant, any_value(kind) AS kind, count(*)::INTEGER AS seeds,
  avg(val_ppl) AS ppl_mean, stddev_samp(val_ppl) AS ppl_std, avg(val_loss) AS loss_mean,
  avg(coalesce(params_total, params)) AS params_total, avg(coalesce(params_active, params)) AS params_active,
  avg(flops_active) AS flops_active, avg(experts_active) AS experts_active, avg(load_cv) AS load_cv,
  avg(no_expert) AS no_expert,
  avg(prefill_tokens_per_sec) AS prefill_tps, avg(decode_tokens_per_sec) AS decode_tps,
  100 * avg((coalesce(params_active, params) - (SELECT non_ffn FROM nf)) / dense_ffn) AS ffn_active_pct
FROM r LEFT JOIN x USING (hash)
GROUP BY variant ORDER BY variant`;
}

/** Welch's t of two rows' `ppl_mean`/`ppl_std`/`seeds` (a - b; null when undefined, e.g. one seed). */
export function welchT(a: Row, b: Row): number | null {
  const [ma, sa, na, mb, sb, nb] = [a.ppl_mean, a.ppl_std, a.seeds, b.ppl_mean, b.ppl_std, b.seeds].map(num);
  if (ma === null || mb === null || sa === null || sb === null || !na || !nb) return null;
  const se = Math.sqrt((sa * sa) / na + (sb * sb) / nb);
  return se > 0 ? (ma - mb) / se : null;
}

/** Formats a number (`-` when missing). */
export function fmt(v: unknown, digits = 3): string {
  const x = num(v);
  return x === null ? "-" : x.toFixed(digits);
}

/** `mean ± std` (`mean` alone without a std, `-` when missing). */
export function fmtMeanStd(mean: unknown, std: unknown, digits = 3): string {
  const m = num(mean), s = num(std);
  if (m === null) return "-";
  return s === null ? m.toFixed(digits) : `${m.toFixed(digits)} ± ${s.toFixed(digits)}`;
}

/** A plain-text table: header, rule, one line per row; number-like columns right-aligned. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const right = header.map((_, i) => rows.every((r) => /^[-+\d.±%ex ]*$/.test(r[i])));
  const line = (cells: string[]) =>
    cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** One measured point of {@link labelledScatter}: a run (one seed) of a labelled variant in a series. */
export interface ScatterPoint {
  series: string;
  label: string;
  x: number;
  y: number;
}

/** Options of {@link labelledScatter}. */
export interface LabelledScatterOptions {
  title?: string;
  subtitle?: string;
  xLabel?: string;
  yLabel?: string;
  width?: number;
  height?: number;
}

/**
 * One dot per label at the mean (x, y) over its points (seeds), with ± one sample std error bars in
 * y, the label written beside it, colored by series; points of a series are joined in x order (e.g.
 * perplexity vs activated parameters, one line per method).
 */
export function labelledScatter(points: ScatterPoint[], opts: LabelledScatterOptions = {}): Plot.PlotOptions {
  const groups = new Map<string, { series: string; label: string; xs: number[]; ys: number[] }>();
  for (const p of points) {
    const g = groups.get(p.label) ?? { series: p.series, label: p.label, xs: [], ys: [] };
    g.xs.push(p.x);
    g.ys.push(p.y);
    groups.set(p.label, g);
  }
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const stats = [...groups.values()].map((g) => {
    const y = mean(g.ys);
    const std = g.ys.length > 1 ? Math.sqrt(g.ys.reduce((a, v) => a + (v - y) ** 2, 0) / (g.ys.length - 1)) : 0;
    return { series: g.series, label: g.label, x: mean(g.xs), y, lo: y - std, hi: y + std };
  }).sort((a, b) => a.x - b.x);
  const series = [...new Set(stats.map((s) => s.series))];
  return {
    title: opts.title,
    subtitle: opts.subtitle ?? "Dots: mean over seeds; bars: ± sample std over seeds.",
    width: opts.width ?? 760,
    height: opts.height ?? 440,
    marginLeft: 56,
    marginBottom: 46,
    marginRight: 90,
    x: { label: opts.xLabel ?? "x →", grid: true, inset: 20, labelAnchor: "center", labelOffset: 40 },
    y: { label: opts.yLabel ?? "↑ y", grid: true, inset: 10 },
    color: { legend: true, domain: series, scheme: series.length <= 10 ? "tableau10" : "turbo" },
    marks: [
      Plot.line(stats, { x: "x", y: "y", z: "series", stroke: "series", strokeOpacity: 0.5 }),
      Plot.ruleX(stats, { x: "x", y1: "lo", y2: "hi", stroke: "series" }),
      Plot.dot(stats, { x: "x", y: "y", fill: "series", r: 4, stroke: "white", strokeWidth: 0.8 }),
      Plot.text(stats, { x: "x", y: "y", text: "label", dx: 6, dy: -8, textAnchor: "start", fontSize: 10 }),
    ],
  };
}

/** Renders a chart to `<plotDir>/<name>.svg|png`; returns the files ([] when plots are off). */
export async function saveChart(ctx: ReportContext, name: string, chart: Plot.PlotOptions): Promise<string[]> {
  if (!ctx.plotDir) return [];
  const p = await savePlot(renderChart(chart).svg, join(ctx.plotDir, name));
  return [p.svg, p.png];
}

/** Validation loss vs step (mean ± std over seeds, one line per variant) -> `val_loss_curves`. */
export async function valLossCurves(ctx: ReportContext, variants?: string[]): Promise<string[]> {
  const r = await ctx.query(
    `SELECT r.variant, m.step, m.value FROM metrics m JOIN current_runs r USING (hash)
     WHERE r.experiment = $e AND r.status = 'completed' AND m.split = 'val' AND m.name = 'loss' AND isfinite(m.value)`,
    { e: ctx.experiment },
  );
  const pts: SeriesPoint[] = r.rows
    .filter((x) => !variants || variants.includes(String(x.variant)))
    .map((x) => ({ series: String(x.variant), x: Number(x.step), y: Number(x.value) }));
  if (!pts.length) return [];
  return await saveChart(
    ctx,
    "val_loss_curves",
    lineWithErrorBars(pts, {
      title: `${ctx.experiment}: validation loss during training`,
      subtitle:
        "Mean over seeds per variant; error bars: ± sample std over seeds. Children count steps from their start.",
      xLabel: "Training step →",
      yLabel: "↑ Validation loss (nats/token)",
      series: variants,
    }),
  );
}

/**
 * Measured inference speed per variant next to the reference variant's (default `dense`): prefill and
 * decode tokens/s at batch 1 (no KV cache; mean over seeds) and their ratio to the reference. Rows as
 * {@link variantSummarySql} returns them. Timings depend on the machine and its load when each run ended.
 */
export function inferenceSpeedTable(rows: Row[], opts: { reference?: string; backend?: string } = {}): string {
  const refName = opts.reference ?? "dense";
  const ref = rows.find((r) => r.variant === refName);
  const ratio = (v: unknown, w: unknown) => {
    const a = num(v), b = num(w);
    return a === null || b === null || b === 0 ? "-" : `${(a / b).toFixed(2)}x`;
  };
  return `inference at batch 1${opts.backend ? ` on ${opts.backend}` : ""} (no KV cache; measured after training, ` +
    `mean over seeds), next to ${refName}:\n` +
    textTable(
      ["variant", "prefill tok/s", `vs ${refName}`, "decode tok/s", `vs ${refName}`],
      rows.map((r) => [
        String(r.variant),
        fmt(r.prefill_tps, 0),
        ratio(r.prefill_tps, ref?.prefill_tps),
        fmt(r.decode_tps, 1),
        ratio(r.decode_tps, ref?.decode_tps),
      ]),
    );
}

/** {@link variantSummarySql}'s rows for the report's experiment, in the order of `variants` (others last). */
export async function variantSummary(ctx: ReportContext, variants: string[]): Promise<Row[]> {
  const rows = (await ctx.query(variantSummarySql(ctx.experiment))).rows;
  const at = (r: Row) => {
    const i = variants.indexOf(String(r.variant));
    return i < 0 ? variants.length : i;
  };
  return rows.sort((a, b) => at(a) - at(b));
}

/** A percentage with one decimal (`-` when missing), e.g. the `ffn_active_pct` column. */
export function fmtPct(v: unknown): string {
  return num(v) === null ? "-" : `${fmt(v, 1)}%`;
}

/** Options of {@link pplVsActiveParams}. */
export interface PplVsActiveOptions {
  /** The chart's subtitle (what the variants share, how activation was measured). */
  subtitle: string;
  /** Colour series of a variant (default: the variant itself). */
  series?: (variant: string) => string;
}

/**
 * Scatter of every completed run's validation perplexity against its activated parameters per token
 * (`params_active`, measured from the routing; total parameters for runs without it) ->
 * `ppl_vs_active_params`. The `dense_parent` variant (a starting point, trained on other tokens) is left out.
 */
export async function pplVsActiveParams(ctx: ReportContext, opts: PplVsActiveOptions): Promise<string[]> {
  const runs = await ctx.query(
    `SELECT r.variant, r.val_ppl, coalesce(x.value, r.params) AS active FROM current_runs r
     LEFT JOIN run_metrics x ON x.hash = r.hash AND x.name = 'params_active'
     WHERE r.experiment = $e AND r.status = 'completed' AND isfinite(r.val_ppl) AND r.variant <> 'dense_parent'`,
    { e: ctx.experiment },
  );
  if (!runs.rows.length) return [];
  const series = opts.series ?? ((v: string) => v);
  return await saveChart(
    ctx,
    "ppl_vs_active_params",
    labelledScatter(
      runs.rows.map((r) => ({
        series: series(String(r.variant)),
        label: String(r.variant),
        x: Number(r.active),
        y: Number(r.val_ppl),
      })),
      {
        title: `${ctx.experiment}: validation perplexity vs activated parameters per token`,
        subtitle: opts.subtitle,
        xLabel: "Activated parameters per token →",
        yLabel: "↑ Validation perplexity (lower is better)",
      },
    ),
  );
}

/** Scale, backend and seeds of the experiment's current runs, as text for a verdict line. */
export async function runMetaText(ctx: ReportContext): Promise<string> {
  const r = await ctx.query(
    `SELECT any_value(scale) AS scale, any_value(backend) AS backend, count(DISTINCT seed)::INTEGER AS seeds,
       (count(*) FILTER (WHERE status = 'completed'))::INTEGER AS completed, count(*)::INTEGER AS planned
     FROM current_runs WHERE experiment = $e`,
    { e: ctx.experiment },
  );
  const m = r.rows[0] ?? {};
  const seeds = Number(m.seeds ?? 0), completed = Number(m.completed ?? 0), planned = Number(m.planned ?? 0);
  return `scale ${m.scale ?? "?"}, ${seeds} seed${seeds === 1 ? "" : "s"}, ${m.backend ?? "?"}` +
    (completed < planned ? `, only ${completed}/${planned} runs completed` : "");
}
