/**
 * Chart builders: each takes plain rows and an options object and returns Observable Plot options
 * (marks, scales, `title`/`subtitle`, `color.legend`), ready for {@link renderChart}. They compose:
 * add marks or change scales on the returned object before rendering.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { textWidth } from "./render.ts";

/** Mean and sample standard deviation (n-1; null for fewer than 2 values) of finite values. */
export function meanStd(values: number[]): { mean: number; std: number | null; n: number } {
  const xs = values.filter(Number.isFinite);
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : null;
  return { mean, std, n };
}

/** Natural ("d2" < "d10") string order. */
export function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}

/** Error-bar caps as custom dot symbols (a short line centred on the point; `size` is the symbol area). */
const CAP_H = { draw: (ctx: CanvasPath, size: number) => lineSymbol(ctx, Math.sqrt(size), 0) };
const CAP_V = { draw: (ctx: CanvasPath, size: number) => lineSymbol(ctx, 0, Math.sqrt(size)) };
function lineSymbol(ctx: CanvasPath, dx: number, dy: number): void {
  ctx.moveTo(-dx, -dy);
  ctx.lineTo(dx, dy);
}

/** Color scheme for `n` categories: tableau10 while it has enough distinct colors, else turbo. */
export function schemeFor(n: number): Plot.ColorScheme {
  return n <= 10 ? "tableau10" : "turbo";
}

/** One value of one run, e.g. its final validation perplexity. */
export interface VariantValueRow {
  variant: string;
  value: number;
  seed?: number;
}

/** Per-variant summary used by {@link metricByVariant}. */
export interface VariantStat {
  variant: string;
  mean: number;
  std: number | null;
  n: number;
  lo: number;
  hi: number;
}

/** Groups rows by variant: mean, sample std and mean ± std. Non-finite values are left out. */
export function summarizeByVariant(rows: VariantValueRow[], order?: string[]): VariantStat[] {
  const by = new Map<string, number[]>();
  for (const r of rows) by.set(r.variant, [...(by.get(r.variant) ?? []), r.value]);
  const names = order ?? [...by.keys()].sort(naturalCompare);
  return names.filter((v) => by.has(v)).map((variant) => {
    const { mean, std, n } = meanStd(by.get(variant)!);
    return { variant, mean, std, n, lo: mean - (std ?? 0), hi: mean + (std ?? 0) };
  }).filter((s) => s.n > 0);
}

/** Options of {@link metricByVariant}. */
export interface MetricByVariantOptions {
  title?: string;
  subtitle?: string;
  /** Axis label of the metric, e.g. "Validation perplexity (lower is better) →". */
  label?: string;
  /** Variant order, top to bottom. Default natural sort. */
  order?: string[];
  width?: number;
  /** Digits of the printed mean ± std. Default 3. */
  digits?: number;
}

/**
 * One row per variant: the mean over seeds (large dot) with ± one sample standard deviation
 * (error bar), every seed's value (small grey dots) and the printed `mean ± std (n)`.
 */
export function metricByVariant(rows: VariantValueRow[], opts: MetricByVariantOptions = {}): Plot.PlotOptions {
  const stats = summarizeByVariant(rows, opts.order);
  const finite = rows.filter((r) => Number.isFinite(r.value));
  const digits = opts.digits ?? 3;
  const fmt = (x: number) => x.toFixed(digits);
  const label = (s: VariantStat) => `${fmt(s.mean)}${s.std !== null ? ` ± ${fmt(s.std)}` : ""}  (n=${s.n})`;
  const longest = Math.max(40, ...stats.map((s) => textWidth(s.variant, 12)));
  const longestLabel = Math.max(60, ...stats.map((s) => textWidth(label(s), 11)));
  const xs = [...finite.map((r) => r.value), ...stats.flatMap((s) => [s.lo, s.hi])];
  const [min, max] = [Math.min(...xs), Math.max(...xs)];
  const padX = (max - min) * 0.08 || Math.abs(max) * 0.05 || 1;
  return {
    title: opts.title,
    subtitle: opts.subtitle ?? "Mean ± sample std over seeds (big dot, bar); small grey dots: individual seeds.",
    width: opts.width ?? 760,
    height: 70 + 34 * Math.max(1, stats.length),
    marginLeft: Math.min(320, longest + 20),
    marginRight: longestLabel + 20,
    marginBottom: 46,
    x: {
      label: opts.label ?? "value →",
      grid: true,
      domain: [min - padX, max + padX],
      nice: false,
      labelAnchor: "center",
      labelOffset: 40,
    },
    y: { label: null, domain: stats.map((s) => s.variant), padding: 0.5 },
    marks: [
      Plot.ruleY(stats.filter((s) => s.std !== null), {
        y: "variant",
        x1: "lo",
        x2: "hi",
        stroke: "#4e79a7",
        strokeWidth: 2,
      }),
      ...["lo", "hi"].map((x) =>
        Plot.dot(stats.filter((s) => s.std !== null), {
          x,
          y: "variant",
          symbol: CAP_V,
          r: 6,
          stroke: "#4e79a7",
          strokeWidth: 2,
        })
      ),
      Plot.dot(finite, { x: "value", y: "variant", r: 2.5, fill: "#888", fillOpacity: 0.7 }),
      Plot.dot(stats, { x: "mean", y: "variant", r: 5, fill: "#4e79a7", stroke: "white", strokeWidth: 1 }),
      Plot.text(stats, {
        x: max + padX,
        y: "variant",
        text: label,
        textAnchor: "start",
        dx: 8,
        fontSize: 11,
        fill: "#222",
      }),
    ],
  };
}

/** One measurement for {@link lineWithErrorBars}: a series, an x value and one y sample (e.g. one seed). */
export interface SeriesPoint {
  series: string;
  x: number;
  y: number;
}

/** Options of {@link lineWithErrorBars}. */
export interface LineWithErrorBarsOptions {
  title?: string;
  subtitle?: string;
  xLabel?: string;
  yLabel?: string;
  /** Logarithmic x axis (e.g. for expert counts 1, 2, 4, ...). */
  logX?: boolean;
  /** Series order. Default natural sort. */
  series?: string[];
  width?: number;
  height?: number;
}

/**
 * One line per series through the mean y at each x, with ± one sample standard deviation error bars
 * over the samples at that x (e.g. val ppl vs M, one line per M·K). A color legend names the series.
 */
export function lineWithErrorBars(points: SeriesPoint[], opts: LineWithErrorBarsOptions = {}): Plot.PlotOptions {
  const groups = new Map<string, { series: string; x: number; ys: number[] }>();
  for (const p of points) {
    const key = `${p.series}\u0000${p.x}`;
    const g = groups.get(key) ?? { series: p.series, x: p.x, ys: [] };
    g.ys.push(p.y);
    groups.set(key, g);
  }
  const stats = [...groups.values()].map((g) => {
    const { mean, std, n } = meanStd(g.ys);
    return { series: g.series, x: g.x, mean, std, n, lo: mean - (std ?? 0), hi: mean + (std ?? 0) };
  }).filter((s) => s.n > 0).sort((a, b) => a.x - b.x);
  const series = opts.series ?? [...new Set(points.map((p) => p.series))].sort(naturalCompare);
  const bars = stats.filter((s) => s.std !== null);
  // Few distinct x values (expert counts, sizes): tick exactly those, so none goes unlabeled on a log axis.
  const xs = [...new Set(stats.map((s) => s.x))].sort((a, b) => a - b);
  const ticks = xs.length <= 12 ? { ticks: xs, tickFormat: (d: number) => String(d) } : {};
  return {
    title: opts.title,
    subtitle: opts.subtitle ?? "Lines through the mean; error bars: ± sample std over seeds.",
    width: opts.width ?? 760,
    height: opts.height ?? 420,
    marginLeft: 56,
    marginBottom: 46,
    x: {
      label: opts.xLabel ?? "x →",
      type: opts.logX ? "log" : "linear",
      grid: true,
      inset: 14,
      labelAnchor: "center",
      labelOffset: 40,
      ...ticks,
    },
    y: { label: opts.yLabel ?? "↑ y", grid: true, inset: 6 },
    color: { legend: true, domain: series, scheme: schemeFor(series.length) },
    marks: [
      Plot.line(stats, { x: "x", y: "mean", z: "series", stroke: "series", strokeWidth: 1.6 }),
      Plot.ruleX(bars, { x: "x", y1: "lo", y2: "hi", stroke: "series", strokeWidth: 1.5 }),
      ...["lo", "hi"].map((y) =>
        Plot.dot(bars, { x: "x", y, symbol: CAP_H, r: 5, stroke: "series", strokeWidth: 1.5 })
      ),
      Plot.dot(stats, { x: "x", y: "mean", fill: "series", r: 3.5, stroke: "white", strokeWidth: 0.8 }),
    ],
  };
}

/** Options of {@link histogram}. */
export interface HistogramOptions {
  title?: string;
  subtitle?: string;
  xLabel?: string;
  /** Number of bins (approximate, as d3 picks nice thresholds). Default 30. */
  bins?: number;
  width?: number;
  height?: number;
}

/** Histogram of numeric values (non-finite values are left out). */
export function histogram(values: number[], opts: HistogramOptions = {}): Plot.PlotOptions {
  const xs = values.filter(Number.isFinite);
  return {
    title: opts.title,
    subtitle: opts.subtitle ?? `${xs.length} values`,
    width: opts.width ?? 640,
    height: opts.height ?? 320,
    marginLeft: 56,
    marginBottom: 46,
    x: { label: opts.xLabel ?? "value →", labelAnchor: "center", labelOffset: 40 },
    y: { label: "↑ Count", grid: true },
    marks: [
      Plot.rectY(xs, {
        ...Plot.binX({ y: "count" }, { x: (d: number) => d, thresholds: opts.bins ?? 30 }),
        fill: "#4e79a7",
      }),
      Plot.ruleY([0]),
    ],
  };
}
