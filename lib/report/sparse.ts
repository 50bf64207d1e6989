/**
 * Report pieces shared by the sparse-model reports (lib/report/dsmoe.ts, finermoe.ts): one SQL query
 * that summarises every variant of an experiment (quality beside total and activated parameters,
 * measured from the routing by lib/models/sparse_metrics.ts), the inference-speed table and the
 * perplexity-vs-activated-parameters chart.
 *
 * @module
 */
import type { ReportContext } from "../experiment/define.ts";
import { labelledScatter } from "../plot/scatter.ts";
import { saveChart } from "./charts.ts";
import { fmt, fmtPct, lit, meanStd, num, type Row, runMetaText, textTable } from "./stats.ts";

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

/** The column headers of {@link leadCells}. */
export const LEAD_HEADER: readonly string[] = ["variant", "seeds", "val ppl"];

/** The column headers of {@link paramCells}. */
export const PARAM_HEADER: readonly string[] = ["params", "active params", "FFN active"];

/** The first cells of a sparse summary row: variant, seeds and val ppl (mean ± std). */
export function leadCells(r: Row): string[] {
  return [String(r.variant), String(r.seeds), meanStd(r.ppl_mean, r.ppl_std)];
}

/** The parameter cells of a sparse summary row: params, active params and the FFN's active share. */
export function paramCells(r: Row): string[] {
  return [fmt(r.params_total, 0), fmt(r.params_active, 0), fmtPct(r.ffn_active_pct)];
}

/** What {@link printSparseSummary} prints. */
export interface SparseSummaryOptions {
  /** The line above the table. */
  title: string;
  /** Column headers, and the cells of one summary row ({@link variantSummarySql}). */
  header: string[];
  row: (r: Row, rows: Row[]) => string[];
  /** The verdict line from the rows and the run metadata text. */
  verdict: (rows: Row[], meta: string) => string;
}

/**
 * The head every sparse report prints: the title, the per-variant table (in the experiment's variant
 * order), the inference-speed table and the verdict. Returns the summary rows.
 */
export async function printSparseSummary(ctx: ReportContext, o: SparseSummaryOptions): Promise<Row[]> {
  const rows = await variantSummary(ctx, Object.keys(ctx.variants));
  ctx.print(o.title);
  ctx.print(textTable(o.header, rows.map((r) => o.row(r, rows))));
  ctx.print(inferenceSpeedTable(rows));
  ctx.print(o.verdict(rows, await runMetaText(ctx)));
  return rows;
}
