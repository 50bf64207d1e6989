/**
 * Charts of experiments, as SVG + PNG files.
 *
 * Building blocks (all return Observable Plot options; render with {@link renderChart}, save with {@link savePlot}):
 * {@link lossCurves}, {@link metricByVariant}, {@link lineWithErrorBars}, {@link histogram}.
 * {@link plotExperiment} draws the standard charts of one experiment from the results store.
 *
 * ```ts
 * const { svg } = renderChart(metricByVariant(rows, { title: "Final val ppl", label: "Validation perplexity →" }));
 * await savePlot(svg, "results/plots/ffn_sweep/final_val_ppl"); // writes .svg and .png
 * ```
 *
 * @module
 */
import { join } from "node:path";
import type { QueryResult } from "../store/mod.ts";
import { metricByVariant, type VariantValueRow } from "./charts.ts";
import { lossCurves, type LossRow } from "./curves.ts";
import { renderChart, requireFonts, savePlot } from "./render.ts";

export * from "./charts.ts";
export * from "./curves.ts";
export * from "./render.ts";

/** What {@link plotExperiment} needs of a store. */
export interface QueryableStore {
  query(sql: string, params?: Record<string, string | number | boolean | null>): Promise<QueryResult>;
}

/** Options of {@link plotExperiment}. */
export interface PlotExperimentOptions {
  /**
   * Final metrics to chart per variant (one `final_<metric>` chart each): a column of `runs`
   * (e.g. `val_ppl`, `val_loss`, `tokens_per_sec`) or a name in `run_metrics` (summary.extra). Default `["val_ppl"]`.
   */
  metrics?: string[];
  /** Metric name of the loss rows in `metrics` (both splits). Default `loss`. */
  lossMetric?: string;
  /** PNG pixel density. Default 1.5. */
  scale?: number;
}

/** Axis labels of well-known metrics. */
const METRIC_LABELS: Record<string, string> = {
  val_ppl: "Validation perplexity (lower is better) →",
  val_loss: "Validation loss, nats/token (lower is better) →",
  final_train_loss: "Final training loss, nats/token →",
  tokens_per_sec: "Training throughput, tokens/s →",
  wall_s: "Wall-clock time, s →",
};

/**
 * Queries one experiment's runs and metrics and writes under `outDir`:
 * - `loss_curves.{svg,png}`: training loss per run (smoothed, raw faint) and validation loss, colored by variant;
 * - `final_<metric>.{svg,png}` per metric: per-variant mean ± sample std over seeds of completed runs.
 *
 * Charts without data (no loss rows, no completed run with the metric) are skipped.
 * Returns the paths written. Rejects when the experiment has no runs in the store.
 */
export async function plotExperiment(
  store: QueryableStore,
  experimentId: string,
  outDir: string,
  opts: PlotExperimentOptions = {},
): Promise<string[]> {
  requireFonts(); // fail before querying when the PNGs could not show text
  const exp = { exp: experimentId };
  // Runs ordered by hash: their row index is the run id the metrics query returns (cheaper than the hash).
  const runs = await store.query(
    "SELECT hash, variant, seed, status FROM runs WHERE experiment = $exp ORDER BY hash",
    exp,
  );
  if (runs.rows.length === 0) throw new Error(`no runs of experiment "${experimentId}" in the results store`);
  const nFailed = runs.rows.filter((r) => r.status === "failed" || r.status === "diverged").length;
  const nCompleted = runs.rows.filter((r) => r.status === "completed").length;
  const variants = new Set(runs.rows.map((r) => String(r.variant)));
  const seeds = new Set(runs.rows.map((r) => r.seed));
  const counts = `${runs.rows.length} runs: ${variants.size} variant${variants.size === 1 ? "" : "s"} × ` +
    `${seeds.size} seed${seeds.size === 1 ? "" : "s"}; ${nCompleted} completed` +
    (nFailed ? `, ${nFailed} failed` : "");
  const written: string[] = [];
  const scale = opts.scale ?? 1.5;

  const lossMetric = opts.lossMetric ?? "loss";
  const loss = await store.query(
    `WITH r AS (SELECT hash, (row_number() OVER (ORDER BY hash) - 1)::INTEGER AS i FROM runs WHERE experiment = $exp)
     SELECT r.i, m.split, m.step, m.value FROM metrics m JOIN r USING (hash)
     WHERE m.name = $name AND m.split IN ('train', 'val') AND isfinite(m.value)`,
    { ...exp, name: lossMetric },
  );
  if (loss.rows.length > 0) {
    const rows: LossRow[] = loss.rows.map((m) => {
      const run = runs.rows[m.i as number];
      return {
        run: String(run.hash),
        group: String(run.variant),
        split: String(m.split),
        step: m.step as number,
        value: m.value as number,
        failed: run.status === "failed" || run.status === "diverged",
        seed: run.seed as number,
      };
    });
    const { svg } = renderChart(lossCurves(rows, { title: `${experimentId}: training and validation loss` }));
    const paths = await savePlot(svg, join(outDir, "loss_curves"), { scale });
    written.push(paths.svg, paths.png);
  }

  for (const metric of opts.metrics ?? ["val_ppl"]) {
    const values = await finalValues(store, experimentId, metric);
    if (values.length === 0) continue;
    const chart = metricByVariant(values, {
      title: `${experimentId}: ${metric} by variant`,
      subtitle: `Mean ± sample std over seeds (big dot, bar); small grey dots: individual seeds. ${counts}.`,
      label: METRIC_LABELS[metric] ?? `${metric} →`,
    });
    const paths = await savePlot(renderChart(chart).svg, join(outDir, `final_${metric}`), { scale });
    written.push(paths.svg, paths.png);
  }
  return written;
}

/** Values of `metric` for the completed runs of an experiment: a `runs` column, else a `run_metrics` name. */
async function finalValues(store: QueryableStore, experimentId: string, metric: string): Promise<VariantValueRow[]> {
  const cols = await store.query(
    "SELECT data_type FROM duckdb_columns() WHERE table_name = 'runs' AND column_name = $metric",
    { metric },
  );
  let res: QueryResult;
  if (cols.rows.length > 0) {
    if (!/^(DOUBLE|FLOAT|INTEGER|BIGINT|DECIMAL)/.test(String(cols.rows[0].data_type))) {
      throw new Error(`plot metric "${metric}" is a ${cols.rows[0].data_type} column of runs, not a number`);
    }
    const col = `"${metric.replaceAll('"', '""')}"`;
    res = await store.query(
      `SELECT variant, seed, ${col}::DOUBLE AS value FROM runs
       WHERE experiment = $exp AND status = 'completed' AND ${col} IS NOT NULL AND isfinite(${col}::DOUBLE)`,
      { exp: experimentId },
    );
  } else {
    res = await store.query(
      `SELECT r.variant, r.seed, x.value FROM run_metrics x JOIN runs r USING (hash)
       WHERE r.experiment = $exp AND r.status = 'completed' AND x.name = $metric AND isfinite(x.value)`,
      { exp: experimentId, metric },
    );
  }
  return res.rows.map((r) => ({ variant: String(r.variant), seed: r.seed as number, value: r.value as number }));
}
