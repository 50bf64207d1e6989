/**
 * Reports of the Finedeep experiments (experiments/ablation-mk.ts, finedeep-vs-dense.ts, routing.ts,
 * nsar.ts): each prints a summary table computed by ONE SQL query over the results database (the
 * query is exported, so the README can show it and anyone can rerun it with `deno task query`),
 * a one-line verdict on the paper's claim derived mechanically from that table, and draws its plots.
 *
 * Statistics: per variant, mean and sample std over seeds; a difference between two variants is
 * judged with Welch's t = (mean_a - mean_b) / sqrt(std_a²/n_a + std_b²/n_b) against
 * {@link T_CRIT} (two-sided 5% at 4 degrees of freedom, i.e. 3 seeds per arm). With so few seeds
 * this is a screen for "clearly different", not a careful test.
 *
 * This module is not part of any run hash (only the trainer's import graph is), so editing a report
 * never invalidates cached runs.
 *
 * @module
 */
import { join } from "node:path";
import type { ReportContext } from "../experiment/define.ts";
import { lineWithErrorBars, metricByVariant, type SeriesPoint } from "../plot/charts.ts";
import { histogramCurves, type HistPoint, withReferenceLines } from "../plot/activations.ts";
import { renderChart, savePlot } from "../plot/render.ts";
import { HIST_BINS } from "../core/analysis.ts";
import type * as Plot from "@observablehq/plot";

/** |t| above this counts as a clear difference (two-sided 5%, 4 degrees of freedom). */
export const T_CRIT = 2.78;

/** A result row (as the store returns it). */
export type Row = Record<string, unknown>;

const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

/** Welch t in SQL of columns `<a>_mean, <a>_std, <a>_n` vs `<b>_...` (NULL when undefined). */
function welch(a: string, b: string): string {
  return `(${a}_mean - ${b}_mean) / nullif(sqrt(pow(${a}_std, 2) / ${a}_n + pow(${b}_std, 2) / ${b}_n), 0)`;
}

// ---- SQL (one query per experiment) -------------------------------------------------------------

/**
 * ablation-mk: one row per variant with M, K, M·K, seeds, val ppl mean/std, the change vs dense (%,
 * Welch t), NSAR_0.1 of SiLU(gate) mean/std, params and FLOPs vs dense (%), whether M is strictly
 * inside its line (`balanced`: neither pure width M = 1 nor pure depth K = 1) and whether the
 * variant is the best of its M·K line. The verdict reads off these columns: "balanced best" when
 * every `best_of_line` row is `balanced`; "beats dense" when the lowest-perplexity Finedeep row has
 * `t_vs_dense < -T_CRIT`.
 */
export function ablationSql(experiment = "ablation-mk"): string {
  return `WITH r AS (
  SELECT hash, variant, model_ffn_kind AS kind, model_ffn_m AS m, model_ffn_k AS k, val_ppl, params, flops_per_token
  FROM current_runs WHERE experiment = ${lit(experiment)} AND status = 'completed'),
n AS (SELECT hash, value AS nsar FROM run_metrics WHERE name = 'nsar_gate_0.1'),
v AS (
  SELECT variant, any_value(kind) AS kind, any_value(m)::INTEGER AS m, any_value(k)::INTEGER AS k,
    count(*) AS v_n, avg(val_ppl) AS v_mean, stddev_samp(val_ppl) AS v_std,
    avg(nsar) AS nsar_mean, stddev_samp(nsar) AS nsar_std, avg(params) AS params, avg(flops_per_token) AS flops
  FROM r LEFT JOIN n USING (hash) GROUP BY variant),
d AS (SELECT v_n AS d_n, v_mean AS d_mean, v_std AS d_std, params AS d_params, flops AS d_flops
      FROM v WHERE kind = 'dense')
SELECT variant, m, k, m * k AS mk, v_n AS seeds, v_mean AS ppl_mean, v_std AS ppl_std,
  100 * (v_mean / d_mean - 1) AS ppl_vs_dense_pct, ${welch("v", "d")} AS t_vs_dense,
  nsar_mean, nsar_std,
  100 * (params / d_params - 1) AS params_vs_dense_pct, 100 * (flops / d_flops - 1) AS flops_vs_dense_pct,
  m > min(m) OVER (PARTITION BY m * k) AND m < max(m) OVER (PARTITION BY m * k) AS balanced,
  kind = 'finedeep' AND v_mean = min(v_mean) OVER (PARTITION BY m * k) AS best_of_line
FROM v LEFT JOIN d ON true
ORDER BY mk NULLS FIRST, m`;
}

/**
 * routing: one row per variant with the routing options, val ppl mean/std, the change vs the
 * paper's choice (output-guided sigmoid, variant `output-sigmoid`) and vs dense (%, Welch t), the
 * mean gate value and its spread (router_mean/router_std), and the rank by perplexity.
 */
export function routingSql(experiment = "routing"): string {
  return `WITH r AS (
  SELECT hash, variant, model_ffn_kind AS kind, model_ffn_score AS score, model_ffn_norm_fn AS norm_fn, val_ppl
  FROM current_runs WHERE experiment = ${lit(experiment)} AND status = 'completed'),
g AS (SELECT hash, max(value) FILTER (WHERE name = 'router_mean') AS gate_mean,
        max(value) FILTER (WHERE name = 'router_std') AS gate_std FROM run_metrics GROUP BY hash),
v AS (SELECT variant, any_value(kind) AS kind, any_value(score) AS score, any_value(norm_fn) AS norm_fn,
        count(*) AS v_n, avg(val_ppl) AS v_mean, stddev_samp(val_ppl) AS v_std,
        avg(gate_mean) AS gate_mean, avg(gate_std) AS gate_std
      FROM r LEFT JOIN g USING (hash) GROUP BY variant),
p AS (SELECT v_n AS p_n, v_mean AS p_mean, v_std AS p_std FROM v WHERE variant = 'output-sigmoid'),
d AS (SELECT v_n AS d_n, v_mean AS d_mean, v_std AS d_std FROM v WHERE kind = 'dense')
SELECT variant, kind, score, norm_fn, v_n AS seeds, v_mean AS ppl_mean, v_std AS ppl_std,
  100 * (v_mean / p_mean - 1) AS ppl_vs_paper_pct, ${welch("v", "p")} AS t_vs_paper,
  100 * (v_mean / d_mean - 1) AS ppl_vs_dense_pct, ${welch("v", "d")} AS t_vs_dense,
  gate_mean, gate_std, rank() OVER (ORDER BY v_mean) AS rank
FROM v LEFT JOIN p ON true LEFT JOIN d ON true
ORDER BY v_mean`;
}

/**
 * finedeep-vs-dense: one row per model size (n_layers, d_model) with params, dense and Finedeep val
 * ppl mean/std, the change (%, Welch t) and NSAR_0.1 of both.
 */
export function fvdSql(experiment = "finedeep-vs-dense"): string {
  return `WITH r AS (
  SELECT hash, model_ffn_kind AS kind, model_n_layers::INTEGER AS n_layers, model_d_model::INTEGER AS d_model,
    val_ppl, params FROM current_runs WHERE experiment = ${lit(experiment)} AND status = 'completed'),
n AS (SELECT hash, value AS nsar FROM run_metrics WHERE name = 'nsar_gate_0.1'),
s AS (SELECT n_layers, d_model, kind, count(*) AS n, avg(val_ppl) AS mean, stddev_samp(val_ppl) AS std,
        avg(params) AS params, avg(nsar) AS nsar FROM r LEFT JOIN n USING (hash) GROUP BY ALL),
j AS (SELECT d.n_layers, d.d_model, d.params AS dense_params, f.params AS finedeep_params,
        d.n AS d_n, d.mean AS d_mean, d.std AS d_std, f.n AS f_n, f.mean AS f_mean, f.std AS f_std,
        d.nsar AS dense_nsar, f.nsar AS finedeep_nsar
      FROM s d JOIN s f ON d.n_layers = f.n_layers AND d.d_model = f.d_model
      WHERE d.kind = 'dense' AND f.kind = 'finedeep')
SELECT n_layers, d_model, dense_params, finedeep_params, d_n AS dense_seeds, d_mean AS dense_ppl_mean,
  d_std AS dense_ppl_std, f_n AS finedeep_seeds, f_mean AS finedeep_ppl_mean, f_std AS finedeep_ppl_std,
  100 * (f_mean / d_mean - 1) AS ppl_change_pct, ${welch("f", "d")} AS t, dense_nsar, finedeep_nsar
FROM j ORDER BY dense_params, n_layers, d_model`; // ties (equal sizes) in a fixed order
}

/**
 * nsar: one row per NSAR metric (SiLU(gate) and gated product, overall and per layer, every τ) with
 * dense and Finedeep mean/std over seeds, the difference and Welch t.
 */
export function nsarSql(experiment = "nsar"): string {
  return `WITH x AS (
  SELECT r.model_ffn_kind AS kind, m.name, m.value FROM current_runs r JOIN run_metrics m USING (hash)
  WHERE r.experiment = ${lit(experiment)} AND r.status = 'completed'
    AND regexp_matches(m.name, '^nsar_(gate|prod)_[0-9.]+(_l[0-9]+)?$')),
s AS (SELECT name, kind, count(*) AS n, avg(value) AS mean, stddev_samp(value) AS std FROM x GROUP BY name, kind)
SELECT f.name AS metric, d.n AS dense_seeds, d.mean AS dense_mean, d.std AS dense_std,
  f.n AS finedeep_seeds, f.mean AS finedeep_mean, f.std AS finedeep_std, f.mean - d.mean AS diff,
  (f.mean - d.mean) / nullif(sqrt(pow(f.std, 2) / f.n + pow(d.std, 2) / d.n), 0) AS t
FROM s f JOIN s d ON f.name = d.name AND f.kind = 'finedeep' AND d.kind = 'dense'
ORDER BY regexp_extract(f.name, '^nsar_(gate|prod)', 1),
  nullif(regexp_extract(f.name, '_l([0-9]+)$', 1), '')::INTEGER NULLS FIRST,
  regexp_extract(f.name, '^nsar_[a-z]+_([0-9.]+)', 1)::DOUBLE`;
}

// ---- formatting ---------------------------------------------------------------------------------

/** `mean ± std` with `digits` decimals (`mean` alone when std is missing; `-` when mean is). */
export function meanStd(mean: unknown, std: unknown, digits = 3): string {
  const m = num(mean), s = num(std);
  if (m === null) return "-";
  return s === null ? m.toFixed(digits) : `${m.toFixed(digits)} ± ${s.toFixed(digits)}`;
}

/** A signed number with `digits` decimals and a suffix (`-` when missing). */
export function signed(v: unknown, digits = 2, suffix = ""): string {
  const x = num(v);
  return x === null ? "-" : `${x >= 0 ? "+" : ""}${x.toFixed(digits)}${suffix}`;
}

/** A plain-text table: a header row, a rule, one line per row; numbers-like columns right-aligned. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const right = header.map((_, i) => rows.every((r) => /^[-+\d.±% ]*$/.test(r[i])));
  const line = (cells: string[]) =>
    cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** How a Welch t reads: `better`/`worse` (lower/higher than the other) when |t| > T_CRIT, else `~`. */
export function judge(t: unknown): "better" | "worse" | "~" | "n/a" {
  const x = num(t);
  if (x === null) return "n/a";
  return x < -T_CRIT ? "better" : x > T_CRIT ? "worse" : "~";
}

// ---- verdicts (pure: rows of the SQL above -> one line) -----------------------------------------

/** Scale, backend and seeds of an experiment's current runs, for the verdict line. */
export interface RunMeta {
  scale: string;
  backend: string;
  seeds: number;
  completed: number;
  planned: number;
}

const metaText = (m: RunMeta) =>
  `scale ${m.scale}, ${m.seeds} seed${m.seeds === 1 ? "" : "s"}, ${m.backend}` +
  (m.completed < m.planned ? `, only ${m.completed}/${m.planned} runs completed` : "");

/** The ablation-mk verdict from {@link ablationSql} rows: is a balanced M/K best, and does Finedeep beat dense? */
export function ablationVerdict(rows: Row[], meta: RunMeta): string {
  const fd = rows.filter((r) => num(r.m) !== null);
  const lines = [...new Set(fd.map((r) => r.mk as number))].sort((a, b) => b - a);
  const parts: string[] = [];
  let balancedWins = 0, linesJudged = 0;
  for (const mk of lines) {
    const line = fd.filter((r) => r.mk === mk).sort((a, b) => (a.m as number) - (b.m as number));
    if (line.length < 3) continue;
    linesJudged++;
    const best = line.reduce((a, b) => ((b.ppl_mean as number) < (a.ppl_mean as number) ? b : a));
    const balanced = best.m !== line[0].m && best.m !== line[line.length - 1].m;
    if (balanced) balancedWins++;
    const spread = Math.max(...line.map((r) => r.ppl_mean as number)) -
      Math.min(...line.map((r) => r.ppl_mean as number));
    const noise = line.reduce((a, r) => a + (num(r.ppl_std) ?? 0), 0) / line.length;
    parts.push(
      `M·K=${mk}: best ${best.variant} (${balanced ? "balanced" : "an extreme"}` +
        `${spread < 2 * noise ? ", line spread within 2 seed-std" : ""})`,
    );
  }
  const dense = rows.find((r) => num(r.m) === null);
  const best = fd.length ? fd.reduce((a, b) => ((b.ppl_mean as number) < (a.ppl_mean as number) ? b : a)) : null;
  let vsDense = "no dense baseline";
  let beats = false;
  if (dense && best) {
    const j = judge(best.t_vs_dense);
    beats = j === "better";
    vsDense = `best Finedeep ${best.variant} vs dense: ${signed(best.ppl_vs_dense_pct, 2, "%")} ppl, ` +
      `t=${signed(best.t_vs_dense, 1)} (${
        j === "better" ? "beats dense" : j === "worse" ? "worse than dense" : j === "~" ? "not significant" : "n/a"
      })`;
  }
  const balancedAll = linesJudged > 0 && balancedWins === linesJudged;
  const claim = balancedAll && beats ? "SUPPORTED" : !balancedAll && !beats ? "NOT SUPPORTED" : "PARTLY SUPPORTED";
  return `verdict (ablation-mk; ${metaText(meta)}): ${parts.join("; ")}; ${vsDense}. ` +
    `Paper's claim (balanced M/K best and Finedeep beats dense): ${claim} at this scale.`;
}

/** The routing verdict from {@link routingSql} rows. */
export function routingVerdict(rows: Row[], meta: RunMeta): string {
  const by = (v: string) => rows.find((r) => r.variant === v);
  const paper = by("output-sigmoid");
  if (!paper) return `verdict (routing; ${metaText(meta)}): no output-sigmoid runs, nothing to judge.`;
  const cmp = (v: string, what: string) => {
    const r = by(v);
    if (!r) return null;
    return `${what}: ${v} ${signed(r.ppl_vs_paper_pct, 2, "%")} (t=${signed(r.t_vs_paper, 1)}, ${
      judge(r.t_vs_paper) === "worse" ? "worse" : judge(r.t_vs_paper) === "better" ? "better" : "~"
    })`;
  };
  const alts = rows.filter((r) => r.kind !== "dense" && r.variant !== "output-sigmoid" && num(r.ppl_mean) !== null);
  const beaten = alts.filter((r) => judge(r.t_vs_paper) === "better").map((r) => r.variant);
  const worse = alts.filter((r) => judge(r.t_vs_paper) === "worse").map((r) => r.variant);
  const best = rows.filter((r) => num(r.ppl_mean) !== null)[0];
  const parts = [
    cmp("input-sigmoid", "input vs output scores"),
    cmp("output-softmax", "softmax vs sigmoid"),
    cmp("none", "no gate vs sigmoid"),
  ].filter(Boolean);
  const claim = beaten.length
    ? `NOT SUPPORTED (${beaten.join(", ")} clearly better)`
    : worse.length === alts.length && alts.length > 0
    ? "SUPPORTED (clearly better than every alternative)"
    : worse.length
    ? `PARTLY SUPPORTED (clearly better than ${worse.join(", ")}; not distinguishable from the rest)`
    : "INCONCLUSIVE (no alternative clearly different)";
  return `verdict (routing; ${metaText(meta)}): best ${best?.variant}; ${parts.join("; ")}. ` +
    `Paper's choice (output-guided sigmoid) best: ${claim} at this scale.`;
}

/** The finedeep-vs-dense verdict from {@link fvdSql} rows. */
export function fvdVerdict(rows: Row[], meta: RunMeta): string {
  const parts = rows.map((r) =>
    `L=${r.n_layers} (${Math.round((r.dense_params as number) / 1000)}k params): ${
      signed(r.ppl_change_pct, 2, "%")
    } ppl, ` +
    `t=${signed(r.t, 1)}`
  );
  const better = rows.filter((r) => judge(r.t) === "better").length;
  const lower = rows.filter((r) => (num(r.ppl_change_pct) ?? 0) < 0).length;
  const claim = rows.length === 0
    ? "NO DATA"
    : better === rows.length
    ? "SUPPORTED (clearly lower perplexity at every size)"
    : lower === rows.length
    ? "WEAKLY SUPPORTED (lower at every size, not clearly)"
    : better > 0 || lower > 0
    ? `MIXED (lower at ${lower}/${rows.length} sizes, clearly at ${better})`
    : "NOT SUPPORTED (not lower at any size)";
  return `verdict (finedeep-vs-dense; ${metaText(meta)}): Finedeep vs dense ${parts.join("; ")}. ` +
    `Paper's claim (Finedeep beats dense across sizes): ${claim} at this scale.`;
}

/** The nsar verdict from {@link nsarSql} rows. */
export function nsarVerdict(rows: Row[], meta: RunMeta): string {
  const overall = rows.filter((r) => /^nsar_gate_[0-9.]+$/.test(String(r.metric)));
  const layers = rows.filter((r) => /^nsar_gate_0\.1_l\d+$/.test(String(r.metric)));
  const higher = overall.filter((r) => (num(r.diff) ?? 0) > 0).length;
  const clearly = overall.filter((r) => judge(r.t) === "worse").length; // t > T_CRIT: Finedeep higher
  const lHigher = layers.filter((r) => (num(r.diff) ?? 0) > 0).length;
  const taus = overall.map((r) =>
    `τ=${String(r.metric).split("_")[2]}: ${meanStd(r.dense_mean, null, 3)} → ${meanStd(r.finedeep_mean, null, 3)}`
  );
  const claim = overall.length === 0
    ? "NO DATA"
    : clearly === overall.length
    ? "SUPPORTED (higher NSAR at every τ, clearly)"
    : higher === overall.length
    ? "WEAKLY SUPPORTED (higher at every τ, not clearly at all)"
    : higher === 0
    ? "NOT SUPPORTED (lower NSAR at every τ)"
    : `MIXED (higher at ${higher}/${overall.length} τ)`;
  return `verdict (nsar; ${metaText(meta)}): NSAR of SiLU(gate), dense → Finedeep: ${taus.join(", ")}; ` +
    `higher in ${lHigher}/${layers.length} layers at τ=0.1. Paper's claim (Finedeep mitigates sparse activation): ` +
    `${claim} at this scale.`;
}

// ---- plotting helpers ---------------------------------------------------------------------------

async function save(ctx: ReportContext, name: string, chart: Plot.PlotOptions): Promise<string[]> {
  if (!ctx.plotDir) return [];
  const p = await savePlot(renderChart(chart).svg, join(ctx.plotDir, name));
  return [p.svg, p.png];
}

/** Scale, backend, seeds and completion of an experiment's current runs. */
export async function runMeta(ctx: ReportContext): Promise<RunMeta> {
  const r = await ctx.query(
    `SELECT any_value(scale) AS scale, any_value(backend) AS backend, count(DISTINCT seed)::INTEGER AS seeds,
       (count(*) FILTER (WHERE status = 'completed'))::INTEGER AS completed, count(*)::INTEGER AS planned
     FROM current_runs WHERE experiment = $e`,
    { e: ctx.experiment },
  );
  const m = r.rows[0] ?? {};
  return {
    scale: String(m.scale ?? "?"),
    backend: String(m.backend ?? "?"),
    seeds: Number(m.seeds ?? 0),
    completed: Number(m.completed ?? 0),
    planned: Number(m.planned ?? 0),
  };
}

/** Per-seed values of a run_metrics name for the completed current runs: variant, seed, value. */
async function extraValues(
  ctx: ReportContext,
  name: string,
): Promise<{ variant: string; seed: number; value: number }[]> {
  const r = await ctx.query(
    `SELECT r.variant, r.seed, x.value FROM run_metrics x JOIN current_runs r USING (hash)
     WHERE r.experiment = $e AND r.status = 'completed' AND x.name = $n AND isfinite(x.value)`,
    { e: ctx.experiment, n: name },
  );
  return r.rows.map((x) => ({ variant: String(x.variant), seed: Number(x.seed), value: Number(x.value) }));
}

/** Validation loss vs step, mean ± std over seeds, one line per variant. */
async function valCurves(ctx: ReportContext, order?: string[]): Promise<string[]> {
  const r = await ctx.query(
    `SELECT r.variant, m.step, m.value FROM metrics m JOIN current_runs r USING (hash)
     WHERE r.experiment = $e AND r.status = 'completed' AND m.split = 'val' AND m.name = 'loss' AND isfinite(m.value)`,
    { e: ctx.experiment },
  );
  if (!r.rows.length) return [];
  const pts: SeriesPoint[] = r.rows.map((x) => ({ series: String(x.variant), x: Number(x.step), y: Number(x.value) }));
  return await save(
    ctx,
    "val_loss_curves",
    lineWithErrorBars(pts, {
      title: `${ctx.experiment}: validation loss during training`,
      subtitle: "Mean over seeds per variant; error bars: ± sample std over seeds.",
      xLabel: "Training step →",
      yLabel: "↑ Validation loss (nats/token)",
      series: order,
    }),
  );
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
  return await save(
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
  ctx.print(ablationVerdict(rows, meta));
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
    files.push(...await save(ctx, "ppl_vs_m", chart));
  }
  files.push(...await valCurves(ctx, order));
  const nsar = await extraValues(ctx, "nsar_gate_0.1");
  if (nsar.length) {
    files.push(
      ...await save(
        ctx,
        "nsar_by_variant",
        metricByVariant(nsar, {
          title: `${ctx.experiment}: NSAR_0.1 of SiLU(gate) by variant`,
          subtitle: "Fraction of |SiLU(gate)| > 0.1 on the validation batches (higher = less sparse); mean ± std.",
          label: "NSAR_0.1 →",
          order,
        }),
      ),
    );
  }
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
  ctx.print(routingVerdict(rows, meta));
  const order = variantOrder(rows);
  const files = [...await valCurves(ctx, order)];
  for (const [name, label] of [["router_mean", "Mean gate value"], ["router_std", "Gate spread (std over tokens)"]]) {
    const v = await extraValues(ctx, name);
    if (!v.length) continue;
    files.push(
      ...await save(
        ctx,
        `${name}_by_variant`,
        metricByVariant(v, {
          title: `${ctx.experiment}: ${label.toLowerCase()} by variant`,
          subtitle: "Router gate values on the validation batches, all layers, sub-layers and experts; mean ± std.",
          label: `${label} →`,
          order,
        }),
      ),
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
  ctx.print(fvdVerdict(rows, meta));
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
      ...await save(
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
      ...await save(
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
  files.push(...await valCurves(ctx));
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
  ctx.print(nsarVerdict(rows, meta));
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
      ...await save(
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
  if (perLayer.rows.length) {
    files.push(
      ...await save(
        ctx,
        "nsar_per_layer",
        lineWithErrorBars(
          perLayer.rows.map((r) => ({
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
      ),
    );
  }
  const perSub = await metricsMatching(ctx, "^nsar_gate_0\\.1_l[0-9]+_m[0-9]+$");
  if (perSub.rows.length) {
    files.push(
      ...await save(
        ctx,
        "nsar_per_sublayer",
        lineWithErrorBars(
          perSub.rows.map((r) => {
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
      ),
    );
  }
  files.push(...await nsarVsTau(ctx));
  return files;
}
