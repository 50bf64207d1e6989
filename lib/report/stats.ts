/**
 * The statistics and text of every report (lib/report/<paper>.ts): Welch's t (in SQL and on rows), the
 * threshold it is judged against, number formats, plain-text tables and the run metadata a verdict
 * line names.
 *
 * Per variant, mean and sample std over seeds; a difference between two variants is judged with
 * Welch's t = (mean_a - mean_b) / sqrt(std_a²/n_a + std_b²/n_b) against {@link T_CRIT} (two-sided 5%
 * at 4 degrees of freedom, i.e. 3 seeds per arm). With so few seeds this is a screen for "clearly
 * different", not a careful test.
 *
 * @module
 */
import type { ReportContext } from "../experiment/define.ts";

/** |t| above this counts as a clear difference (two-sided 5%, 4 degrees of freedom). */
export const T_CRIT = 2.78;

/** Two-sided 5% critical values of Student's t for 1..10 degrees of freedom. */
const T_TABLE = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228];

/**
 * Two-sided 5% critical value of Student's t at `df` degrees of freedom (e.g. a paired t over n seeds has
 * n - 1): the table for df ≤ 10, 2.2 up to 20, 2.1 up to 30, 2.0 beyond (a conservative screen). Infinity
 * for df < 1.
 */
export function tCrit(df: number): number {
  if (!(df >= 1)) return Infinity;
  const d = Math.floor(df);
  return d <= 10 ? T_TABLE[d - 1] : d <= 20 ? 2.2 : d <= 30 ? 2.1 : 2.0;
}

/** A result row (as the store returns it). */
export type Row = Record<string, unknown>;

/** A SQL string literal. */
export const lit = (s: string): string => `'${s.replaceAll("'", "''")}'`;

/** A finite number or null. */
export function num(v: unknown): number | null {
  const x = typeof v === "bigint" ? Number(v) : v;
  return typeof x === "number" && Number.isFinite(x) ? x : null;
}

/** Welch t in SQL of columns `<a>_mean, <a>_std, <a>_n` vs `<b>_...` (NULL when undefined). */
export function welchSql(a: string, b: string): string {
  return `(${a}_mean - ${b}_mean) / nullif(sqrt(pow(${a}_std, 2) / ${a}_n + pow(${b}_std, 2) / ${b}_n), 0)`;
}

/** Welch's t of two rows' `ppl_mean`/`ppl_std`/`seeds` (a - b; null when undefined, e.g. one seed). */
export function welchT(a: Row, b: Row): number | null {
  const [ma, sa, na, mb, sb, nb] = [a.ppl_mean, a.ppl_std, a.seeds, b.ppl_mean, b.ppl_std, b.seeds].map(num);
  if (ma === null || mb === null || sa === null || sb === null || !na || !nb) return null;
  const se = Math.sqrt((sa * sa) / na + (sb * sb) / nb);
  return se > 0 ? (ma - mb) / se : null;
}

/** How a Welch t reads: `better`/`worse` (lower/higher than the other) when |t| > T_CRIT, else `~`. */
export function judge(t: unknown): "better" | "worse" | "~" | "n/a" {
  const x = num(t);
  if (x === null) return "n/a";
  return x < -T_CRIT ? "better" : x > T_CRIT ? "worse" : "~";
}

// ---- formatting ---------------------------------------------------------------------------------

/** Formats a number (`-` when missing). */
export function fmt(v: unknown, digits = 3): string {
  const x = num(v);
  return x === null ? "-" : x.toFixed(digits);
}

/** `mean ± std` with `digits` decimals (`mean` alone when std is missing; `-` when mean is). */
export function meanStd(mean: unknown, std: unknown, digits = 3): string {
  const m = num(mean), s = num(std);
  if (m === null) return "-";
  return s === null ? m.toFixed(digits) : `${m.toFixed(digits)} ± ${s.toFixed(digits)}`;
}

/** A signed number with `digits` decimals and a suffix (`-` when missing). */
export function signed(v: unknown, digits = 2, suffix = ""): string {
  const x = num(v);
  return x === null ? "-" : `${x >= 0 ? "+" : ""}${x.toFixed(digits)}${suffix}`;
}

/** A percentage with one decimal (`-` when missing), e.g. the `ffn_active_pct` column. */
export function fmtPct(v: unknown): string {
  return num(v) === null ? "-" : `${fmt(v, 1)}%`;
}

/** A plain-text table: header, rule, one line per row; number-like columns right-aligned. */
export function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const right = header.map((_, i) => rows.every((r) => /^[-+\d.±%ex ]*$/.test(r[i])));
  const line = (cells: string[]) =>
    cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

// ---- run metadata -------------------------------------------------------------------------------

/** Scale, backend and seeds of an experiment's current runs, for the verdict line. */
export interface RunMeta {
  scale: string;
  backend: string;
  seeds: number;
  completed: number;
  planned: number;
}

/** {@link RunMeta} as the text of a verdict line: `scale default, 3 seeds, native`. */
export function metaText(m: RunMeta): string {
  return `scale ${m.scale}, ${m.seeds} seed${m.seeds === 1 ? "" : "s"}, ${m.backend}` +
    (m.completed < m.planned ? `, only ${m.completed}/${m.planned} runs completed` : "");
}

/** Scale, backend, seeds and completion of an experiment's current runs. */
export async function runMeta(ctx: ReportContext): Promise<RunMeta> {
  const r = await ctx.query(
    `SELECT any_value(scale) AS scale, any_value(backend) AS backend, count(DISTINCT seed)::INTEGER AS seeds,
       (count(*) FILTER (WHERE status = 'completed'))::INTEGER AS completed, count(*)::INTEGER AS planned
     FROM current_runs WHERE experiment = $e`,
    { e: ctx.experiment },
  );
  const m = r.rows[0] ?? {};
  return {
    scale: String(m.scale ?? "?"),
    backend: String(m.backend ?? "?"),
    seeds: Number(m.seeds ?? 0),
    completed: Number(m.completed ?? 0),
    planned: Number(m.planned ?? 0),
  };
}

/** {@link runMeta} as text ({@link metaText}). */
export async function runMetaText(ctx: ReportContext): Promise<string> {
  return metaText(await runMeta(ctx));
}

// ---- confidence intervals -----------------------------------------------------------------------

/** Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (t_{0.975, df}). */
const T975 = [
  12.706,
  4.303,
  3.182,
  2.776,
  2.571,
  2.447,
  2.365,
  2.306,
  2.262,
  2.228,
  2.201,
  2.179,
  2.16,
  2.145,
  2.131,
  2.12,
  2.11,
  2.101,
  2.093,
  2.086,
  2.08,
  2.074,
  2.069,
  2.064,
  2.06,
  2.056,
  2.052,
  2.048,
  2.045,
  2.042,
];

/** t_{0.975, df}: the multiplier of a two-sided 95% t-interval (1.96 beyond 30 degrees of freedom is not used: 2.0). */
export function tQuantile95(df: number): number {
  if (!Number.isInteger(df) || df < 1) throw new RangeError(`degrees of freedom must be an integer >= 1, got ${df}`);
  return df <= T975.length ? T975[df - 1] : 2.0;
}

/** Mean and two-sided 95% t-interval of a sample (low/high null with fewer than 2 values). */
export interface Interval {
  mean: number | null;
  low: number | null;
  high: number | null;
  n: number;
}

/** The 95% t-interval of the mean of `values`: mean ± t_{0.975, n-1} · s / √n. */
export function tInterval(values: number[]): Interval {
  const n = values.length;
  if (n === 0) return { mean: null, low: null, high: null, n };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, low: null, high: null, n };
  const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const half = tQuantile95(n - 1) * sd / Math.sqrt(n);
  return { mean, low: mean - half, high: mean + half, n };
}
