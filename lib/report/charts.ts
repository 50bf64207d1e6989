/**
 * Charts every report draws: saving a chart beside the experiment's plots, and validation-loss curves.
 *
 * @module
 */
import { join } from "node:path";
import type * as Plot from "@observablehq/plot";
import type { ReportContext } from "../experiment/define.ts";
import { lineWithErrorBars, type SeriesPoint } from "../plot/charts.ts";
import { renderChart, savePlot } from "../plot/render.ts";

/** Renders a chart to `<plotDir>/<name>.svg|png`; returns the files ([] when plots are off). */
export async function saveChart(ctx: ReportContext, name: string, chart: Plot.PlotOptions): Promise<string[]> {
  if (!ctx.plotDir) return [];
  const p = await savePlot(renderChart(chart).svg, join(ctx.plotDir, name));
  return [p.svg, p.png];
}

/** The chart {@link saveChartOf} saves: its file name and how it is drawn from the rows. */
export interface ChartOf<R> {
  name: string;
  draw: (rows: R[]) => Plot.PlotOptions;
}

/** {@link saveChart} of `chart.draw(rows)` when there are rows; no rows: nothing drawn, no files. */
export async function saveChartOf<R>(ctx: ReportContext, rows: R[], chart: ChartOf<R>): Promise<string[]> {
  return rows.length ? await saveChart(ctx, chart.name, chart.draw(rows)) : [];
}

/**
 * Validation loss vs step (mean ± std over seeds, one line per variant, in `order`; only those
 * variants when `order` is given) -> `val_loss_curves`. `note` ends the subtitle.
 */
export async function valLossCurves(ctx: ReportContext, order?: string[], note = ""): Promise<string[]> {
  const r = await ctx.query(
    `SELECT r.variant, m.step, m.value FROM metrics m JOIN current_runs r USING (hash)
     WHERE r.experiment = $e AND r.status = 'completed' AND m.split = 'val' AND m.name = 'loss' AND isfinite(m.value)`,
    { e: ctx.experiment },
  );
  const pts: SeriesPoint[] = r.rows
    .filter((x) => !order || order.includes(String(x.variant)))
    .map((x) => ({ series: String(x.variant), x: Number(x.step), y: Number(x.value) }));
  if (!pts.length) return [];
  return await saveChart(
    ctx,
    "val_loss_curves",
    lineWithErrorBars(pts, {
      title: `${ctx.experiment}: validation loss during training`,
      subtitle: "Mean over seeds per variant; error bars: ± sample std over seeds." + (note ? ` ${note}` : ""),
      xLabel: "Training step →",
      yLabel: "↑ Validation loss (nats/token)",
      series: order,
    }),
  );
}
