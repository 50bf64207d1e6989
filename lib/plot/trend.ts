/**
 * Effect vs training tokens: small composable pieces for the claims-across-scale plots. A least-squares
 * trend of the effect against log10(tokens) ({@link fitLogTrend}), where it crosses zero
 * ({@link zeroCrossing}), and the chart ({@link effectVsTokens}): per series (model size) the measured
 * effects with their 95% CI band, the fitted trend (dashed, drawn past the data only up to its zero
 * crossing and labelled as extrapolation) and the zero line.
 *
 * @module
 */
import * as Plot from "@observablehq/plot";

/** One measured effect at one token budget. */
export interface EffectPoint {
  /** The line, e.g. `d=64`. */
  series: string;
  tokens: number;
  effect: number;
  low: number | null;
  high: number | null;
}

/** effect = a + b·log10(tokens), fitted to the points by least squares. */
export interface LogTrend {
  a: number;
  /** Change of the effect per tenfold more tokens. */
  b: number;
  n: number;
}

/** Least-squares fit of effect against log10(tokens); null with fewer than two distinct token counts. */
export function fitLogTrend(points: { tokens: number; effect: number }[]): LogTrend | null {
  const xs = points.map((p) => Math.log10(p.tokens)), ys = points.map((p) => p.effect);
  const n = xs.length;
  if (new Set(xs).size < 2) return null;
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  const sxy = xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0);
  const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  const b = sxy / sxx;
  return { a: my - b * mx, b, n };
}

/** Where a trend crosses zero, relative to the measured token range. */
export interface Crossing {
  tokens: number;
  /** `within` the measured range, or `extrapolated` beyond its largest budget (or below its smallest). */
  kind: "within" | "extrapolated";
}

/** The token count where the trend's effect is 0 (null for a flat trend). */
export function zeroCrossing(t: LogTrend, range: { min: number; max: number }): Crossing | null {
  if (t.b === 0 || !Number.isFinite(t.b)) return null;
  const tokens = 10 ** (-t.a / t.b);
  if (!Number.isFinite(tokens) || tokens <= 0) return null;
  return { tokens, kind: tokens >= range.min && tokens <= range.max ? "within" : "extrapolated" };
}

/** Options of {@link effectVsTokens}. */
export interface EffectVsTokensOptions {
  title?: string;
  subtitle?: string;
  yLabel?: string;
  /** Values the y axis always shows (e.g. `[0, 1]` for a count that may be 0 everywhere). */
  yInclude?: number[];
  /** Draw an extrapolated trend at most this factor past the largest budget (default 1000). */
  maxExtrapolation?: number;
  width?: number;
  height?: number;
}

/**
 * The chart: x = tokens (log scale), y = effect; per series the CI band, the points joined by a line, and
 * the fitted trend dashed up to its zero crossing (within `maxExtrapolation`), with the crossing labelled.
 */
export function effectVsTokens(points: EffectPoint[], opts: EffectVsTokensOptions = {}): Plot.PlotOptions {
  const series = [...new Set(points.map((p) => p.series))].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  const maxT = Math.max(...points.map((p) => p.tokens)), minT = Math.min(...points.map((p) => p.tokens));
  const limit = maxT * (opts.maxExtrapolation ?? 1000);
  const trend: { series: string; tokens: number; effect: number }[] = [];
  const labels: { series: string; tokens: number; effect: number; text: string }[] = [];
  for (const s of series) {
    const fit = fitLogTrend(points.filter((p) => p.series === s));
    if (!fit) continue;
    const cross = zeroCrossing(fit, { min: minT, max: maxT });
    const end = cross && cross.tokens > maxT && cross.tokens <= limit ? cross.tokens : maxT;
    for (let i = 0; i <= 24; i++) {
      const x = minT * (end / minT) ** (i / 24);
      trend.push({ series: s, tokens: x, effect: fit.a + fit.b * Math.log10(x) });
    }
    if (cross && cross.tokens <= limit && cross.tokens >= minT) {
      labels.push({
        series: s,
        tokens: cross.tokens,
        effect: 0,
        text: `${s}: 0 at ${fmtCount(cross.tokens)}${cross.kind === "extrapolated" ? " (extrapolation)" : ""}`,
      });
    }
  }
  const bands = points.filter((p) => p.low !== null && p.high !== null);
  const ys = opts.yInclude && [
    ...opts.yInclude,
    ...points.flatMap((p) => [p.effect, p.low ?? p.effect, p.high ?? p.effect]),
    ...trend.map((t) => t.effect),
  ];
  return {
    title: opts.title,
    subtitle: opts.subtitle,
    width: opts.width ?? 760,
    height: opts.height ?? 420,
    marginLeft: 60,
    marginRight: 30,
    marginBottom: 46,
    x: { type: "log", label: "Training tokens per run (log scale) →", grid: true, labelAnchor: "center" },
    y: {
      label: opts.yLabel ?? "↑ Effect",
      grid: true,
      ...(ys ? { domain: [Math.min(...ys), Math.max(...ys)], nice: true } : {}),
    },
    color: { legend: true, domain: series, scheme: "tableau10" },
    marks: [
      Plot.ruleY([0], { stroke: "#333", strokeWidth: 1 }),
      Plot.areaY(bands, { x: "tokens", y1: "low", y2: "high", fill: "series", fillOpacity: 0.15, z: "series" }),
      Plot.line(points, { x: "tokens", y: "effect", stroke: "series", strokeWidth: 1.8, marker: "circle" }),
      Plot.line(trend, { x: "tokens", y: "effect", stroke: "series", strokeDasharray: "5,4", strokeOpacity: 0.8 }),
      Plot.dot(labels, { x: "tokens", y: "effect", stroke: "series", symbol: "times", r: 5 }),
      // One line per series in the top-right corner: labels at crossings close together would overprint.
      ...labels.map((l, i) =>
        Plot.text([l], { frameAnchor: "top-right", text: "text", dx: -4, dy: 4 + 14 * i, fontSize: 10, fill: "series" })
      ),
    ],
  };
}

/** `2.3M`, `410k`: a count on the chart. */
function fmtCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : `${Math.round(n / 1e3)}k`;
}
