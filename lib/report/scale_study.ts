/**
 * Claims across scale (experiments/scale-study.ts): the ledger rows of the study (lib/report/claims.ts)
 * pivoted to one row per claim test (variant vs baseline) and model size with one column per token budget
 * ({@link scaleTable}: effect, 95% CI over seeds, verdict), the trend of the effect per tenfold tokens,
 * whether it moves toward the paper's side, and where the fitted trend crosses zero (extrapolation beyond
 * the largest budget is labelled as such); and one effect-vs-tokens plot per claim (one series per test and
 * model size).
 *
 * @module
 */
import type * as Plot from "@observablehq/plot";
import type { ReportContext } from "../experiment/define.ts";
import { effectVsTokens, fitLogTrend, zeroCrossing } from "../plot/trend.ts";
import { saveChart } from "./charts.ts";
import { type Claim, type ClaimRow, type ClaimTest, computeLedger, effectText, fmtTokens } from "./claims.ts";
import { CLAIMS } from "./claims_declared.ts";
import { signed, textTable } from "./stats.ts";

/** The study's experiment id. */
export const SCALE_STUDY = "scale-study";

/** The claims with only their tests in `experiment`. */
export function claimsOf(experiment: string, claims: readonly Claim[] = CLAIMS): Claim[] {
  return claims.filter((c) => c.tests.some((t) => t.experiment === experiment))
    .map((c) => ({ ...c, tests: c.tests.filter((t) => t.experiment === experiment) }));
}

/** `variant vs baseline`, `variant vs best of a, b` or (a test of the variant's runs alone) `variant`. */
export function testLabel(test: ClaimTest): string {
  if (test.baseline === undefined) return test.variant;
  return `${test.variant} vs ${Array.isArray(test.baseline) ? `best of ${test.baseline.join(", ")}` : test.baseline}`;
}

/** The test of `claim` a ledger row comes from (its experiment, variant and one of its baselines). */
export function testOf(claim: Claim | undefined, row: ClaimRow): ClaimTest | undefined {
  return claim?.tests.find((t) =>
    t.experiment === row.experiment && t.variant === row.variant &&
    (t.baseline === undefined ? row.baseline === "-" : [t.baseline].flat().includes(row.baseline))
  );
}

/** The label of a ledger row's test (`variant vs baseline` as the row says when its claim is not given). */
function rowLabel(claims: readonly Claim[], r: ClaimRow): string {
  const test = testOf(claims.find((c) => c.id === r.claim), r);
  return test ? testLabel(test) : r.baseline === "-" ? r.variant : `${r.variant} vs ${r.baseline}`;
}

/** A pivot: column names and one record of cell texts per claim test and model size. */
export interface ScaleTable {
  header: string[];
  rows: Record<string, string>[];
}

const STATUS_SHORT: Record<string, string> = {
  "supported": "supported",
  "not supported": "NOT supported",
  "inconclusive": "inconclusive",
};

/**
 * One row per (claim, test, d_model) of the ledger rows (of one experiment): the test (`variant vs baseline`,
 * {@link testLabel}), one column per token budget (`effect [CI] verdict`), then the trend per tenfold tokens,
 * whether it moves toward the paper's side, and the token count where the fitted trend reaches 0 (`-` when it
 * does not, or only below the smallest budget).
 */
export function scaleTable(rows: ClaimRow[], claims: readonly Claim[] = CLAIMS): ScaleTable {
  const budgets = [...new Set(rows.map((r) => r.tokens))].sort((a, b) => a - b);
  const cols = budgets.map((t) => `${fmtTokens(t)} tokens`);
  const header = [
    "claim",
    "paper",
    "variant vs baseline",
    "d",
    "seeds",
    ...cols,
    "trend /10x tokens",
    "toward paper",
    "fit = 0 at",
  ];
  const keyOf = (r: ClaimRow) => `${r.claim}|${rowLabel(claims, r)}|${r.d_model}`;
  const keys = [...new Set(rows.map(keyOf))];
  const out = keys.map((key) => {
    const mine = rows.filter((r) => keyOf(r) === key).sort((a, b) => a.tokens - b.tokens);
    const first = mine[0];
    const claim = claims.find((c) => c.id === first.claim);
    const cells: Record<string, string> = {
      claim: first.claim,
      paper: first.paper,
      "variant vs baseline": rowLabel(claims, first),
      d: String(first.d_model),
      seeds: [...new Set(mine.map((r) => r.n_seeds))].join("/"),
    };
    budgets.forEach((t, i) => {
      const r = mine.find((x) => x.tokens === t);
      cells[cols[i]] = r ? `${effectText(r)} ${STATUS_SHORT[r.status]}` : "-";
    });
    const fit = fitLogTrend(mine);
    const unit = first.effect_unit === "%" ? "%" : "";
    const s = claim?.supports === "higher" ? 1 : -1;
    cells["trend /10x tokens"] = fit ? `${signed(fit.b, unit ? 2 : 4)}${unit}` : "-";
    cells["toward paper"] = !fit ? "-" : s * fit.b > 0 ? "yes" : "no";
    // Where the fitted trend reaches 0 within or beyond the measured budgets (a crossing below them is not shown).
    const cross = fit && zeroCrossing(fit, { min: mine[0].tokens, max: mine[mine.length - 1].tokens });
    cells["fit = 0 at"] = !cross || cross.tokens < mine[0].tokens
      ? "-"
      : `${fmtTokens(cross.tokens)}${cross.kind === "extrapolated" ? " (extrapolation)" : ""}`;
    return cells;
  });
  return { header, rows: out };
}

/** The scale-study report: the pivot of its ledger rows and one effect-vs-tokens plot per claim. */
export async function scaleStudyReport(ctx: ReportContext): Promise<string[]> {
  const claims = claimsOf(ctx.experiment);
  const rows = await computeLedger(claims, (sql) => ctx.query(sql));
  const table = scaleTable(rows, claims);
  ctx.print(
    `\n${ctx.experiment}: each claim's effect (variant vs baseline, paired by seed; mean [95% t-interval]) and ` +
      `verdict per token budget and model size`,
  );
  ctx.print(textTable(table.header, table.rows.map((r) => table.header.map((h) => r[h]))));
  const files: string[] = [];
  for (const claim of claims) {
    const mine = rows.filter((r) => r.claim === claim.id);
    if (!mine.length) continue;
    files.push(...await saveChart(ctx, `effect_vs_tokens_${claim.id}`, claimChart(claim, mine)));
  }
  return files;
}

/** The y-axis label of a claim's effect: its custom effect's label, or the metric's relative change or difference. */
export function effectLabel(claim: Claim, unit: ClaimRow["effect_unit"]): string {
  if (claim.effect) return claim.effect.label;
  const metric = claim.metric ?? "val_ppl";
  return unit === "%" ? `${metric} relative change, %` : `${metric} difference`;
}

/**
 * One claim's effect-vs-tokens chart from its ledger rows: one series per model size, or per test and model size
 * when the claim has several tests; the subtitle names the tests, the effect and the claim's rule.
 */
export function claimChart(claim: Claim, rows: ClaimRow[]): Plot.PlotOptions {
  const several = new Set(rows.map((r) => rowLabel([claim], r))).size > 1;
  const tests = [...new Set(rows.map((r) => rowLabel([claim], r)))].join("; ");
  const rule = claim.rule === "zero"
    ? `where the effect is 0 in every seed (not supported where the band lies above 0). `
    : claim.rule === "not_worse"
    ? `where the band lies below +${claim.margin ?? 2}% (not worse than the baseline by more than that margin). `
    : `where the band lies ${claim.supports === "lower" ? "below" : "above"} 0. `;
  return effectVsTokens(
    rows.map((r) => ({
      series: several ? `${rowLabel([claim], r)}, d=${r.d_model}` : `d=${r.d_model}`,
      tokens: r.tokens,
      effect: r.effect,
      low: r.ci_low,
      high: r.ci_high,
    })),
    {
      title: `${claim.paper}: ${claim.statement}`,
      subtitle: `${tests}: ${effectLabel(claim, rows[0].effect_unit)}, mean over seeds with its 95% t-interval ` +
        `(band). The claim is supported ${rule}Dashed: least-squares trend in log tokens; past the largest budget ` +
        `it is extrapolation.`,
      yLabel: `↑ Effect (${effectLabel(claim, rows[0].effect_unit)})`,
      // A count of violations is often 0 everywhere: keep 0 and 1 on the axis.
      yInclude: claim.rule === "zero" ? [0, 1] : undefined,
    },
  );
}
