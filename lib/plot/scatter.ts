/**
 * A labelled scatter chart: one dot per label at its mean over seeds, error bars, joined per series.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";

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
