/**
 * Chart builders for activation analysis and budget-matched comparisons (used by the Finedeep
 * experiments' reports, lib/report/finedeep.ts). Like lib/plot/charts.ts they return Observable Plot
 * options for `renderChart`.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { naturalCompare } from "./charts.ts";

/** One point of a histogram curve: the fraction `y` of values in the bin starting at `x`. */
export interface HistPoint {
  /** Curve (e.g. the variant). */
  series: string;
  /** Panel (e.g. `layer 0`); one row of panels per distinct value. */
  panel: string;
  /** Lower edge of the bin. */
  x: number;
  /** Fraction of values in the bin (e.g. mean over seeds). */
  y: number;
}

/** Options of {@link histogramCurves}. */
export interface HistogramCurvesOptions {
  title?: string;
  subtitle?: string;
  xLabel?: string;
  /** Logarithmic y axis (fractions spanning orders of magnitude). Default true. */
  logY?: boolean;
  /** Series order (legend). Default natural sort. */
  series?: string[];
  width?: number;
  /** Height of one panel, px. Default 150. */
  panelHeight?: number;
}

/**
 * Histograms as step curves, one color per series, one panel per `panel` value (stacked vertically):
 * e.g. the SiLU(gate) distribution per layer, dense vs Finedeep.
 */
export function histogramCurves(points: HistPoint[], opts: HistogramCurvesOptions = {}): Plot.PlotOptions {
  const logY = opts.logY ?? true;
  const data = (logY ? points.filter((p) => p.y > 0) : [...points]).sort((a, b) => a.x - b.x); // lines join in order
  const series = opts.series ?? [...new Set(points.map((p) => p.series))].sort(naturalCompare);
  const panels = [...new Set(points.map((p) => p.panel))].sort(naturalCompare);
  return {
    title: opts.title,
    subtitle: opts.subtitle,
    width: opts.width ?? 760,
    height: 60 + (opts.panelHeight ?? 150) * Math.max(1, panels.length),
    marginLeft: 64,
    marginRight: 70,
    marginBottom: 46,
    x: { label: opts.xLabel ?? "value →", labelAnchor: "center", labelOffset: 40, grid: true },
    y: { label: "↑ Fraction of values", type: logY ? "log" : "linear", grid: true, tickFormat: "~g" },
    fy: { domain: panels, label: null },
    color: { legend: true, domain: series, scheme: series.length <= 10 ? "tableau10" : "turbo" },
    marks: [
      Plot.line(data, {
        x: "x",
        y: "y",
        fy: "panel",
        z: "series",
        stroke: "series",
        strokeWidth: 1.5,
        curve: "step-after",
      }),
      Plot.frame({ stroke: "#ccc" }),
    ],
  };
}

/** A horizontal reference (e.g. the dense baseline): mean, optional ± std band, and a label. */
export interface ReferenceLine {
  y: number;
  std?: number | null;
  label: string;
}

/**
 * Adds horizontal reference lines (dashed, with dotted ± std lines and a label at the right end)
 * to chart options built by the other builders. Returns new options.
 */
export function withReferenceLines(chart: Plot.PlotOptions, lines: ReferenceLine[]): Plot.PlotOptions {
  const bands = lines.filter((l) => l.std != null && l.std > 0).map((l) => ({
    ...l,
    lo: l.y - l.std!,
    hi: l.y + l.std!,
  }));
  return {
    ...chart,
    marginRight: Math.max(Number(chart.marginRight ?? 20), 90),
    marks: [
      ...(chart.marks ?? []),
      Plot.ruleY(lines, { y: "y", stroke: "#555", strokeDasharray: "6,4", strokeWidth: 1.3 }),
      ...bands.flatMap((b) => [
        Plot.ruleY([b], { y: "lo", stroke: "#999", strokeOpacity: 0.6, strokeDasharray: "2,3" }),
        Plot.ruleY([b], { y: "hi", stroke: "#999", strokeOpacity: 0.6, strokeDasharray: "2,3" }),
      ]),
      Plot.text(lines, {
        y: "y",
        frameAnchor: "right",
        text: "label",
        textAnchor: "start",
        dx: 6,
        fontSize: 11,
        fill: "#333",
      }),
    ],
  };
}
