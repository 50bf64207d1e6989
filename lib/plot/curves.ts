/**
 * Loss curves over training steps: EMA-smoothed training loss, validation points, seeds told apart by dash
 * patterns and markers, one panel per variant when there are many. Returns Observable Plot options like the
 * builders of lib/plot/charts.ts.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";
import { naturalCompare, schemeFor } from "./charts.ts";

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
