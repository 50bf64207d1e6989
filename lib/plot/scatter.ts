/**
 * A labelled scatter chart: one dot per label at its mean over seeds, error bars, joined per series; labels are
 * placed so that none overprints another ({@link placeLabels}).
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { textWidth } from "./render.ts";

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

/** A point to label: where it is (data units) and its text. */
export interface LabelAnchor {
  label: string;
  x: number;
  y: number;
}

/** A label as {@link placeLabels} places it: its point, its text, and the y (data units) it is written at. */
export interface PlacedLabel extends LabelAnchor {
  /** y of the label's middle, in data units. */
  ly: number;
  /** Lines (of the font size + 2 px) the label moved from its first place to clear another. */
  shift: number;
  /** The label is written left of its dot (it would not fit right of it). */
  left: boolean;
}

/** The plot area and font of {@link placeLabels}, in px. */
export interface LabelFrame {
  width: number;
  height: number;
  fontSize: number;
  /** Room right of the plot area (the right margin) a label may run into. Default 0. */
  right?: number;
}

/** Pixels between a dot and its label (right and up). */
const LABEL_DX = 6, LABEL_DY = 8;

/**
 * Places one label per point so that no two overprint: labels of points that coincide (within 2 px) are
 * joined into one (`a, b`), a label that would run past the right margin is written left of its dot, and one whose box would overlap one already placed moves up or down a line at
 * a time (up to 8 lines) to the nearest free place. Pixels are estimated from the frame and the data's extent.
 */
export function placeLabels(points: LabelAnchor[], frame: LabelFrame): PlacedLabel[] {
  if (points.length === 0) return [];
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const perX = frame.width / (x1 - x0 || 1), perY = frame.height / (y1 - y0 || 1);
  const px = (p: LabelAnchor) => ({ u: (p.x - x0) * perX, v: (y1 - p.y) * perY });
  // Points at the same place share one label.
  const merged: LabelAnchor[] = [];
  for (const p of [...points].sort((a, b) => a.x - b.x || b.y - a.y)) {
    const a = px(p);
    const same = merged.find((m) => Math.abs(px(m).u - a.u) < 2 && Math.abs(px(m).v - a.v) < 2);
    if (same) same.label += `, ${p.label}`;
    else merged.push({ ...p });
  }
  const line = frame.fontSize + 2;
  const boxes: { l: number; r: number; t: number; b: number }[] = [];
  const overlaps = (q: (typeof boxes)[number]) => boxes.some((b) => q.l < b.r && b.l < q.r && q.t < b.b && b.t < q.b);
  return merged.map((m) => {
    const { u, v } = px(m);
    const w = textWidth(m.label, frame.fontSize);
    const left = u + LABEL_DX + w > frame.width + (frame.right ?? 0) && u - LABEL_DX - w >= 0;
    const boxAt = (k: number) => {
      const mid = v - LABEL_DY + k * line, l = left ? u - LABEL_DX - w : u + LABEL_DX;
      return { l, r: l + w, t: mid - line / 2, b: mid + line / 2 };
    };
    const shift = [0, -1, 1, -2, 2, -3, 3, -4, 4, -5, 5, -6, 6, -7, 7, -8, 8].find((k) => !overlaps(boxAt(k))) ?? 0;
    boxes.push(boxAt(shift));
    return { ...m, ly: m.y + (LABEL_DY - shift * line) / perY, shift, left };
  });
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
  const width = opts.width ?? 760, height = opts.height ?? 440;
  const [marginLeft, marginRight, marginTop, marginBottom, insetX, insetY] = [56, 90, 20, 46, 20, 10];
  const fontSize = 10;
  const labels = placeLabels(stats, {
    width: width - marginLeft - marginRight - 2 * insetX,
    height: height - marginTop - marginBottom - 2 * insetY,
    fontSize,
    right: marginRight - 4,
  });
  return {
    title: opts.title,
    subtitle: opts.subtitle ?? "Dots: mean over seeds; bars: ± sample std over seeds.",
    width,
    height,
    marginLeft,
    marginTop,
    marginBottom,
    marginRight,
    x: { label: opts.xLabel ?? "x →", grid: true, inset: insetX, labelAnchor: "center", labelOffset: 40 },
    y: { label: opts.yLabel ?? "↑ y", grid: true, inset: insetY },
    color: { legend: true, domain: series, scheme: series.length <= 10 ? "tableau10" : "turbo" },
    marks: [
      Plot.line(stats, { x: "x", y: "y", z: "series", stroke: "series", strokeOpacity: 0.5 }),
      Plot.ruleX(stats, { x: "x", y1: "lo", y2: "hi", stroke: "series" }),
      Plot.dot(stats, { x: "x", y: "y", fill: "series", r: 4, stroke: "white", strokeWidth: 0.8 }),
      // A label moved off its dot to clear another gets a faint leader back to the dot.
      Plot.link(labels.filter((l) => l.shift !== 0), {
        x1: "x",
        y1: "y",
        x2: "x",
        y2: "ly",
        dx: LABEL_DX / 2,
        stroke: "#aaa",
        strokeWidth: 0.6,
      }),
      ...[false, true].map((left) =>
        Plot.text(labels.filter((l) => l.left === left), {
          x: "x",
          y: "ly",
          text: "label",
          dx: left ? -LABEL_DX : LABEL_DX,
          textAnchor: left ? "end" : "start",
          fontSize,
        })
      ),
    ],
  };
}
