/**
 * The claims ledger: every paper claim our experiments test, judged at every scale it was measured at.
 *
 * A claim ({@link Claim}, declared once in lib/report/claims_declared.ts) names the paper, its statement,
 * the metric, the direction that supports it and the experiments that test it (each a variant vs a
 * baseline, or vs the strongest of several baselines). For every completed current run of those
 * experiments, {@link ledgerRows} pairs the variant's and the baseline's runs by seed at each scale point
 * (tokens per run = steps × batch × seq_len, and d_model), takes the per-seed effect (relative difference
 * in % for perplexity and loss, plain difference otherwise), its mean and 95% t-interval over seeds
 * ({@link tInterval}), and judges it ({@link judgeEffect}): the verdict carries its scale, e.g.
 * "not supported at 154k tokens, d=64".
 *
 * Rows go to the DuckDB table `claims` (lib/api writes it after each experiment's report and on
 * `db rebuild`), to `deno task claims`, and to each experiment's report ({@link claimsText}), whose verdict
 * lines take every claim's supported / not supported / inconclusive word from these rows
 * (lib/report/ledger_verdict.ts), so a report and the ledger cannot disagree.
 *
 * @module
 */
import { fmt, lit, num, type Row, signed, textTable, tInterval } from "./stats.ts";

/** The paper a claim comes from (digests in ../shared/research/). */
export type Paper = "Finedeep" | "DSMoE" | "FineRMoE";

/** One experiment that tests a claim: the paper's arm vs a baseline (or the strongest of several). */
export interface ClaimTest {
  experiment: string;
  variant: string;
  /**
   * One baseline, or several: the one with the best mean metric at each scale point is used. Omitted: the
   * claim's {@link Claim.effect} reads the variant's runs alone (e.g. the shape of one model's curve).
   */
  baseline?: string | string[];
}

/** A paper claim, declared once. */
export interface Claim {
  /** Stable id, e.g. `finedeep-beats-dense`. */
  id: string;
  paper: Paper;
  /** The claim in one sentence. */
  statement: string;
  /** A `runs` column (`val_ppl`, `val_loss`) or a `run_metrics` name. Default `val_ppl`. */
  metric?: string;
  /** The variant's metric vs the baseline's that supports the claim. */
  supports: "lower" | "higher";
  /**
   * `better` (default): supported when the effect's interval lies on the supporting side of 0;
   * `not_worse` (non-inferiority, e.g. "dense quality"): supported when the whole interval is at most `margin`
   * on the wrong side, not supported when all of it is more than `margin` on the wrong side, else inconclusive;
   * `zero`: for a count of violations (≥ 0): supported when it is 0 in every seed, not supported when the
   * interval lies above 0, else inconclusive.
   */
  rule?: "better" | "not_worse" | "zero";
  /** `not_worse`: the tolerated effect on the wrong side (default 2, i.e. 2%). */
  margin?: number;
  tests: ClaimTest[];
  /**
   * A claim that is not a plain metric difference: its per-seed effects from the variant's and the baseline's
   * runs at one scale point (the runs carry the `reads` metrics as columns), judged like any other effect.
   */
  effect?: {
    reads: string;
    unit: "%" | "abs";
    /** What the effect measures, for axis labels (e.g. `soft vs thresholded ppl at matched activation, %`). */
    label: string;
    of: (variant: Row[], baseline: Row[]) => number[];
  };
}

/** How a claim fares at one scale point. */
export type ClaimStatus = "supported" | "not supported" | "inconclusive";

/** One ledger row: a claim, an experiment that tests it, a scale point. */
export interface ClaimRow {
  claim: string;
  paper: string;
  statement: string;
  experiment: string;
  variant: string;
  /** The baseline used (for several: the strongest at this point). */
  baseline: string;
  metric: string;
  /** The experiment's scale preset (`default`, `tiny`, `gpu`). */
  scale: string;
  d_model: number;
  /** Training tokens per run: steps × batch_size × seq_len. */
  tokens: number;
  /** Mean trainable parameters of the variant's runs. */
  params: number;
  /** Mean per-seed effect (variant vs baseline): % for ppl and loss, else the plain difference. */
  effect: number;
  effect_unit: "%" | "abs";
  /** 95% t-interval of the effect over seeds (null with one seed). */
  ci_low: number | null;
  ci_high: number | null;
  n_seeds: number;
  status: ClaimStatus;
  /** The status with its scale: `not supported at 154k tokens, d=64`. */
  verdict: string;
}

/** The columns of the `claims` table and of `deno task claims`, in order. */
export const CLAIM_COLUMNS: readonly (keyof ClaimRow)[] = [
  "claim",
  "paper",
  "experiment",
  "variant",
  "baseline",
  "metric",
  "scale",
  "d_model",
  "tokens",
  "params",
  "effect",
  "effect_unit",
  "ci_low",
  "ci_high",
  "n_seeds",
  "status",
  "verdict",
  "statement",
];

const RELATIVE = new Set(["val_ppl", "val_loss"]);

/** Metric columns of the claims' tests that are not `runs` columns (read from run_metrics). */
function extraMetrics(claims: readonly Claim[]): string[] {
  return [...new Set(claims.map((c) => c.metric ?? "val_ppl").filter((m) => !RELATIVE.has(m)))];
}

/** The `run_metrics` name prefixes the claims' custom effects read (see {@link Claim.effect}). */
function readPrefixes(claims: readonly Claim[]): string[] {
  return [...new Set(claims.flatMap((c) => c.effect ? [c.effect.reads] : []))];
}

/**
 * The `(hash, name, value)` run_metrics rows named with one of the claims' effect prefixes (null when none):
 * {@link computeLedger} adds them to the run rows as columns.
 */
export function claimReadsSql(claims: readonly Claim[]): string | null {
  const p = readPrefixes(claims);
  return p.length
    ? `SELECT hash, name, value FROM run_metrics WHERE ${p.map((x) => `starts_with(name, ${lit(x)})`).join(" OR ")}`
    : null;
}

/**
 * One row per completed current run of the experiments the claims test: experiment, variant, seed,
 * scale, d_model, tokens, params and every metric the claims read (as columns named by the metric).
 */
export function claimRunsSql(claims: readonly Claim[]): string {
  const exps = [...new Set(claims.flatMap((c) => c.tests.map((t) => t.experiment)))];
  const extra = extraMetrics(claims).map((m) =>
    `(SELECT max(x.value) FROM run_metrics x WHERE x.hash = r.hash AND x.name = ${lit(m)}) AS "${m}"`
  );
  return `SELECT r.hash, r.experiment, r.variant, r.seed::INTEGER AS seed, r.scale, r.model_d_model::INTEGER AS d_model,
  (r.train_steps * r.train_batch_size * r.model_seq_len)::BIGINT AS tokens, r.params, r.val_ppl, r.val_loss${
    extra.map((e) => `,\n  ${e}`).join("")
  }
FROM current_runs r
WHERE r.status = 'completed' AND r.experiment IN (${exps.length ? exps.map(lit).join(", ") : "NULL"})
ORDER BY r.experiment, tokens, d_model, r.variant, seed`;
}

/** `384`, `154k`, `1.2M`, `3.4B`: a token count in a verdict. */
export function fmtTokens(tokens: number): string {
  if (tokens < 1000) return String(tokens);
  if (tokens < 1e6) return `${tokens < 1e4 ? (tokens / 1000).toFixed(1) : Math.round(tokens / 1000)}k`;
  if (tokens < 1e9) return `${(tokens / 1e6).toFixed(tokens >= 1e7 ? 0 : 1)}M`;
  if (tokens < 1e12) return `${(tokens / 1e9).toFixed(tokens >= 1e10 ? 0 : 1)}B`;
  if (tokens < 1e15) return `${(tokens / 1e12).toFixed(tokens >= 1e13 ? 0 : 1)}T`;
  return tokens.toExponential(1).replace("e+", "e"); // extrapolated zero crossings can lie far out: 3.0e21
}

/**
 * The status of a claim from its effect interval: the supporting side is negative for `lower`, positive for
 * `higher`. With one seed (no interval) the sign of the mean decides (`not_worse`: within `margin`). `not_worse`
 * is a non-inferiority test: a wide interval that reaches past the margin is inconclusive, never supported.
 */
export function judgeEffect(
  e: { mean: number; low: number | null; high: number | null },
  claim: Pick<Claim, "supports" | "rule" | "margin">,
): ClaimStatus {
  if (claim.rule === "zero") {
    return e.mean === 0 ? "supported" : (e.low ?? e.mean) > 0 ? "not supported" : "inconclusive";
  }
  const s = claim.supports === "lower" ? -1 : 1;
  const notWorse = claim.rule === "not_worse";
  if (e.low === null || e.high === null) {
    if (notWorse) return s * e.mean >= -(claim.margin ?? 2) ? "supported" : "not supported";
    return s * e.mean > 0 ? "supported" : "not supported";
  }
  const good = Math.min(s * e.low, s * e.high) > 0, bad = Math.max(s * e.low, s * e.high) < 0;
  if (notWorse) {
    const m = claim.margin ?? 2, worst = -Math.min(s * e.low, s * e.high), least = -Math.max(s * e.low, s * e.high);
    return worst <= m ? "supported" : least > m ? "not supported" : "inconclusive";
  }
  return good ? "supported" : bad ? "not supported" : "inconclusive";
}

/** The verdict text: the status and its scale (`inconclusive at 51k tokens, d=32, 1 seed`). */
export function verdictText(status: ClaimStatus, p: { tokens: number; d_model: number; n_seeds: number }): string {
  return `${status} at ${fmtTokens(p.tokens)} tokens, d=${p.d_model}${p.n_seeds === 1 ? ", 1 seed" : ""}`;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The ledger rows of one claim test at one scale point (null when the variant or baselines have no runs). */
function testRow(claim: Claim, test: ClaimTest, runs: Row[]): ClaimRow | null {
  const metric = claim.metric ?? "val_ppl";
  const valueOf = (r: Row) => num(r[metric]);
  const arm = (v: string) => runs.filter((r) => r.variant === v && valueOf(r) !== null);
  const variant = arm(test.variant);
  const named = test.baseline === undefined ? [test.variant] : [test.baseline].flat();
  const candidates = named.map((b) => ({ name: b, runs: arm(b) })).filter((b) => b.runs.length);
  if (!variant.length || !candidates.length) return null;
  const s = claim.supports === "lower" ? 1 : -1; // the strongest baseline has the lowest s·mean
  const base = candidates.reduce((a, b) =>
    s * mean(b.runs.map(valueOf) as number[]) < s * mean(a.runs.map(valueOf) as number[]) ? b : a
  );
  const bySeed = new Map(base.runs.map((r) => [Number(r.seed), valueOf(r)!]));
  const relative = claim.effect ? claim.effect.unit === "%" : RELATIVE.has(metric);
  const effects = claim.effect
    ? claim.effect.of(variant, base.runs)
    : variant.filter((r) => bySeed.has(Number(r.seed))).map((r) => {
      const v = valueOf(r)!, b = bySeed.get(Number(r.seed))!;
      return relative ? 100 * (v / b - 1) : v - b;
    });
  if (!effects.length) return null;
  const ci = tInterval(effects);
  const p = { tokens: Number(variant[0].tokens), d_model: Number(variant[0].d_model), n_seeds: ci.n };
  const status = judgeEffect({ mean: ci.mean!, low: ci.low, high: ci.high }, claim);
  return {
    claim: claim.id,
    paper: claim.paper,
    statement: claim.statement,
    experiment: test.experiment,
    variant: test.variant,
    baseline: test.baseline === undefined ? "-" : base.name,
    metric: claim.effect ? `${claim.effect.reads}*` : metric,
    scale: String(variant[0].scale ?? "default"),
    ...p,
    params: Math.round(mean(variant.map((r) => Number(r.params)))),
    effect: ci.mean!,
    effect_unit: relative ? "%" : "abs",
    ci_low: ci.low,
    ci_high: ci.high,
    status,
    verdict: verdictText(status, p),
  };
}

/**
 * The ledger (pure): for each claim, each of its tests and each scale point (tokens, d_model) of that
 * experiment's runs ({@link claimRunsSql} rows), one {@link ClaimRow}; ordered by claim, experiment,
 * d_model, tokens.
 */
export function ledgerRows(claims: readonly Claim[], runs: Row[]): ClaimRow[] {
  const out: ClaimRow[] = [];
  for (const claim of claims) {
    for (const test of claim.tests) {
      const mine = runs.filter((r) => r.experiment === test.experiment);
      const points = [...new Set(mine.map((r) => `${r.d_model}|${r.tokens}`))];
      for (const key of points) {
        const row = testRow(claim, test, mine.filter((r) => `${r.d_model}|${r.tokens}` === key));
        if (row) out.push(row);
      }
    }
  }
  return out.sort((a, b) =>
    CLAIM_ORDER(claims, a) - CLAIM_ORDER(claims, b) || a.experiment.localeCompare(b.experiment) ||
    a.variant.localeCompare(b.variant) || a.d_model - b.d_model || a.tokens - b.tokens
  );
}

const CLAIM_ORDER = (claims: readonly Claim[], r: ClaimRow) => claims.findIndex((c) => c.id === r.claim);

/** The ledger of the given claims over a database (`query` runs SQL). */
export async function computeLedger(
  claims: readonly Claim[],
  query: (sql: string) => Promise<{ rows: Row[] }>,
): Promise<ClaimRow[]> {
  const runs = (await query(claimRunsSql(claims))).rows;
  const reads = claimReadsSql(claims);
  if (reads) {
    const byHash = new Map(runs.map((r) => [String(r.hash), r]));
    for (const m of (await query(reads)).rows) {
      const r = byHash.get(String(m.hash));
      if (r) r[String(m.name)] = num(m.value);
    }
  }
  return ledgerRows(claims, runs);
}

/** `+3.10% [+1.2, +5.0]`: an effect and its interval. */
export function effectText(r: Pick<ClaimRow, "effect" | "ci_low" | "ci_high" | "effect_unit">): string {
  const d = r.effect_unit === "%" ? 2 : 4, u = r.effect_unit === "%" ? "%" : "";
  const ci = r.ci_low === null ? "" : ` [${signed(r.ci_low, d - 1)}, ${signed(r.ci_high, d - 1)}]`;
  return `${signed(r.effect, d)}${u}${ci}`;
}

/** The ledger as a plain-text table (printed under each experiment's report). */
export function claimsText(rows: ClaimRow[]): string {
  return textTable(
    ["claim", "variant vs baseline", "d", "tokens", "params", "effect [95% CI]", "seeds", "verdict"],
    rows.map((r) => [
      r.claim,
      r.baseline === "-" ? r.variant : `${r.variant} vs ${r.baseline}`,
      String(r.d_model),
      fmtTokens(r.tokens),
      fmt(r.params, 0),
      effectText(r),
      String(r.n_seeds),
      r.verdict,
    ]),
  );
}

/**
 * SQL that replaces the `claims` table's rows of the given experiments with `rows` (DELETE, then one
 * INSERT; none when `rows` is empty).
 */
export function claimsWriteSql(experiments: string[], rows: ClaimRow[]): string[] {
  const v = (x: unknown) => x === null || x === undefined ? "NULL" : typeof x === "number" ? String(x) : lit(String(x));
  const out = [`DELETE FROM claims WHERE experiment IN (${experiments.map(lit).join(", ") || "NULL"})`];
  if (rows.length) {
    out.push(
      `INSERT INTO claims (${CLAIM_COLUMNS.join(", ")}) VALUES ${
        rows.map((r) => `(${CLAIM_COLUMNS.map((c) => v(r[c])).join(", ")})`).join(", ")
      }`,
    );
  }
  return out;
}
