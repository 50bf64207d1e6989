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

/**
 * Debiased exponential moving average (as TensorBoard smooths curves): weight 0 = raw values,
 * 0.9 = strong smoothing. Non-finite values are passed through and do not enter the average.
 */
export function ema(values: number[], weight: number): number[] {
  let acc = 0, n = 0;
  return values.map((v) => {
    if (!Number.isFinite(v)) return v;
    acc = acc * weight + (1 - weight) * v;
    n++;
    return acc / (1 - weight ** n);
  });
}

/** Keeps at most `max` evenly spaced items (always the first and last). */
export function thin<T>(xs: T[], max: number): T[] {
  if (xs.length <= max) return xs;
  const out: T[] = [];
  const step = (xs.length - 1) / (max - 1);
  for (let i = 0; i < max; i++) out.push(xs[Math.round(i * step)]);
  return out;
}

/** Error-bar caps as custom dot symbols (a short line centred on the point; `size` is the symbol area). */
const CAP_H = { draw: (ctx: CanvasPath, size: number) => lineSymbol(ctx, Math.sqrt(size), 0) };
const CAP_V = { draw: (ctx: CanvasPath, size: number) => lineSymbol(ctx, 0, Math.sqrt(size)) };
function lineSymbol(ctx: CanvasPath, dx: number, dy: number): void {
  ctx.moveTo(-dx, -dy);
  ctx.lineTo(dx, dy);
}

/** Color scheme for `n` categories: tableau10 while it has enough distinct colors, else turbo. */
function schemeFor(n: number): Plot.ColorScheme {
  return n <= 10 ? "tableau10" : "turbo";
}

/** One logged loss value of a run. */
export interface LossRow {
  /** Identifies the run (one line per run). */
  run: string;
  /** Color group, e.g. the variant. */
  group: string;
  /** `train` or `val`. */
  split: string;
  step: number;
  value: number;
  /** The run failed (its last training point gets a red ×). */
  failed?: boolean;
  /** The run's seed: seeds of one group get different dash patterns. */
  seed?: number;
}

/** Dash patterns of the 1st, 2nd, ... seed of a group (solid, long dash, dots, dash-dot). */
export const SEED_DASHES = ["none", "7,3", "2,2", "7,2,2,2"] as const;

/** Above this many groups, loss curves are drawn one panel per group (faceted). */
export const FACET_ABOVE = 5;

/**
 * Integer tick values for a step axis from `min` to `max` (about 8 of them, at 1, 2 or 5 x 10^k): no
 * half-step ticks at tiny scale.
 */
export function integerTicks(min: number, max: number, count = 8): number[] {
  const span = Math.max(1, max - min);
  const raw = span / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = Math.max(1, [1, 2, 5, 10].map((m) => m * pow).find((v) => v >= raw) ?? 10 * pow);
  const out: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max; t += step) out.push(t);
  return out;
}

/** Options of {@link lossCurves}. */
export interface LossCurvesOptions {
  title?: string;
  subtitle?: string;
  /** EMA weight for the training curves, in [0, 1). Default: 0.6 for ≤ 50 points per run, else 0.9. */
  smoothing?: number;
  /** Also draw the raw training loss, faint. Default true when smoothing > 0. */
  showRaw?: boolean;
  /** Points per run kept for drawing (the EMA uses all). Default 300. */
  maxPoints?: number;
  /** Order of the color groups. Default natural sort. */
  groups?: string[];
  yLabel?: string;
  width?: number;
  height?: number;
}

/**
 * Training loss (EMA-smoothed solid lines, raw faint) and validation loss (dashed lines with dots)
 * per run, colored by group.
 */
export function lossCurves(rows: LossRow[], opts: LossCurvesOptions = {}): Plot.PlotOptions {
  const byRun = new Map<string, LossRow[]>();
  for (const r of rows) {
    if (r.split !== "train") continue;
    const list = byRun.get(r.run) ?? [];
    list.push(r);
    byRun.set(r.run, list);
  }
  const maxLen = Math.max(0, ...[...byRun.values()].map((l) => l.length));
  const weight = opts.smoothing ?? (maxLen <= 50 ? 0.6 : 0.9);
  if (!(weight >= 0 && weight < 1)) throw new Error(`lossCurves: smoothing must be in [0, 1), got ${weight}`);
  const maxPoints = opts.maxPoints ?? 300;
  const raw: LossRow[] = [];
  const smooth: LossRow[] = [];
  for (const list of byRun.values()) {
    list.sort((a, b) => a.step - b.step);
    const s = ema(list.map((r) => r.value), weight);
    raw.push(...thin(list, maxPoints));
    smooth.push(...thin(list.map((r, i) => ({ ...r, value: s[i] })), maxPoints));
  }
  const val = rows.filter((r) => r.split === "val").sort((a, b) => a.step - b.step);
  const failedEnds = [...byRun.values()].filter((l) => l.length && l[0].failed).map((l) => l[l.length - 1]);
  const groups = opts.groups ?? [...new Set(rows.map((r) => r.group))].sort(naturalCompare);
  const showRaw = opts.showRaw ?? weight > 0;
  const smoothing = weight > 0 ? `EMA ${weight}${showRaw ? ", raw faint" : ""}` : "raw";

  // Seeds of one group: the k-th seed (by value) gets SEED_DASHES[k] and a marker shape for its validation points.
  const seedsOf = new Map<string, number[]>();
  for (const r of rows) {
    const list = seedsOf.get(r.group) ?? [];
    if (!list.includes(r.seed ?? 0)) list.push(r.seed ?? 0);
    seedsOf.set(r.group, list);
  }
  for (const list of seedsOf.values()) list.sort((a, b) => a - b);
  const rank = (r: LossRow) => seedsOf.get(r.group)!.indexOf(r.seed ?? 0) % SEED_DASHES.length;
  const maxSeeds = Math.max(1, ...[...seedsOf.values()].map((l) => l.length));

  // Many groups: one panel per group (3 columns), each with the group's name, sharing the axes.
  const facet = groups.length > FACET_ABOVE;
  const cols = 3;
  const cell = (g: string) => ({ fx: groups.indexOf(g) % cols, fy: Math.floor(groups.indexOf(g) / cols) });
  const withCell = (xs: LossRow[]) => (facet ? xs.map((r) => ({ ...r, ...cell(r.group) })) : xs);
  const f = facet ? { fx: "fx", fy: "fy" } : {};
  const steps = rows.map((r) => r.step);
  const xTicks = steps.length ? integerTicks(Math.min(...steps), Math.max(...steps), facet ? 4 : 8) : undefined;

  const seedMarks = Array.from(
    { length: Math.min(maxSeeds, SEED_DASHES.length) },
    (_, k) =>
      Plot.line(withCell(smooth.filter((r) => rank(r) === k)), {
        x: "step",
        y: "value",
        z: "run",
        stroke: "group",
        strokeWidth: 1.6,
        strokeDasharray: SEED_DASHES[k],
        ...f,
      }),
  );
  const seedNote = maxSeeds > 1
    ? ` Seeds of a variant: ${
      ["solid", "long dashes", "dots", "dash-dot"].slice(0, Math.min(maxSeeds, 4)).join(", ")
    }` +
      " lines; validation points circle, square, triangle, diamond."
    : "";
  return {
    title: opts.title,
    subtitle: opts.subtitle ??
      `Lines: training loss (${smoothing}). Dots: validation loss.${seedNote}` +
        (failedEnds.length ? " Red ×: last step of a failed run." : "") +
        (facet ? " One panel per variant." : ""),
    width: opts.width ?? 760,
    height: opts.height ?? (facet ? 60 + 170 * Math.ceil(groups.length / cols) : 440),
    marginLeft: 56,
    marginRight: 24,
    marginBottom: 46,
    x: { label: "Training step →", grid: true, labelAnchor: "center", labelOffset: 40, ticks: xTicks, tickFormat: "d" },
    y: { label: opts.yLabel ?? "↑ Loss (nats/token)", grid: true },
    ...(facet ? { fx: { axis: null }, fy: { axis: null } } : {}),
    color: { legend: true, domain: groups, scheme: schemeFor(groups.length) },
    symbol: { domain: [0, 1, 2, 3], range: ["circle", "square", "triangle", "diamond"] },
    marks: [
      facet ? Plot.frame({ stroke: "#ddd" }) : null,
      facet
        ? Plot.text(groups.map((g) => ({ group: g, ...cell(g) })), {
          fx: "fx",
          fy: "fy",
          text: "group",
          frameAnchor: "top-left",
          dx: 6,
          dy: 6,
          fontWeight: "bold",
        })
        : null,
      showRaw
        ? Plot.line(withCell(raw), {
          x: "step",
          y: "value",
          z: "run",
          stroke: "group",
          strokeOpacity: 0.18,
          strokeWidth: 1,
          ...f,
        })
        : null,
      ...seedMarks,
      Plot.line(withCell(val), { x: "step", y: "value", z: "run", stroke: "group", strokeWidth: 0.8, ...f }),
      Plot.dot(withCell(val).map((r) => ({ ...r, seedRank: rank(r) })), {
        x: "step",
        y: "value",
        fill: "group",
        symbol: "seedRank",
        r: 3,
        stroke: "white",
        strokeWidth: 0.6,
        ...f,
      }),
      Plot.dot(withCell(failedEnds), {
        x: "step",
        y: "value",
        symbol: "times",
        r: 5,
        stroke: "#d62728",
        strokeWidth: 2.5,
        ...f,
      }),
    ],
  };
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
