/**
 * Claims across scale (experiments/scale-study.ts): the ledger rows of the study (lib/report/claims.ts)
 * pivoted to one row per claim and model size with one column per token budget
 * ({@link scaleTable}: effect, 95% CI over seeds, verdict), the trend of the effect per tenfold tokens,
 * whether it moves toward the paper's side, and where the fitted trend crosses zero (extrapolation beyond
 * the largest budget is labelled as such); and one effect-vs-tokens plot per claim.
 *
 * @module
 */
import type { ReportContext } from "../experiment/define.ts";
import { effectVsTokens, fitLogTrend, zeroCrossing } from "../plot/trend.ts";
import { saveChart } from "./charts.ts";
import { type Claim, type ClaimRow, computeLedger, effectText, fmtTokens } from "./claims.ts";
import { CLAIMS } from "./claims_declared.ts";
import { signed, textTable } from "./stats.ts";

/** The study's experiment id. */
export const SCALE_STUDY = "scale-study";

/** The claims with only their tests in `experiment`. */
export function claimsOf(experiment: string, claims: readonly Claim[] = CLAIMS): Claim[] {
  return claims.filter((c) => c.tests.some((t) => t.experiment === experiment))
    .map((c) => ({ ...c, tests: c.tests.filter((t) => t.experiment === experiment) }));
}

/** A pivot: column names and one record of cell texts per claim and model size. */
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
 * One row per (claim, d_model) of the ledger rows (of one experiment), one column per token budget
 * (`effect [CI] verdict`), then the trend per tenfold tokens, whether it moves toward the paper's side,
 * and the token count where the fitted trend reaches 0 (`-` when it does not, or only below the smallest budget).
 */
export function scaleTable(rows: ClaimRow[], claims: readonly Claim[] = CLAIMS): ScaleTable {
  const budgets = [...new Set(rows.map((r) => r.tokens))].sort((a, b) => a - b);
  const cols = budgets.map((t) => `${fmtTokens(t)} tokens`);
  const header = ["claim", "paper", "d", "seeds", ...cols, "trend /10x tokens", "toward paper", "fit = 0 at"];
  const keys = [...new Set(rows.map((r) => `${r.claim}|${r.d_model}`))];
  const out = keys.map((key) => {
    const mine = rows.filter((r) => `${r.claim}|${r.d_model}` === key).sort((a, b) => a.tokens - b.tokens);
    const first = mine[0];
    const claim = claims.find((c) => c.id === first.claim);
    const cells: Record<string, string> = {
      claim: first.claim,
      paper: first.paper,
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
    const unit = mine[0].effect_unit === "%" ? "%" : "";
    const test = claim.tests[0];
    const vs = `${test.variant} vs ${
      Array.isArray(test.baseline) ? `best of ${test.baseline.join(", ")}` : test.baseline
    }`;
    files.push(
      ...await saveChart(
        ctx,
        `effect_vs_tokens_${claim.id}`,
        effectVsTokens(
          mine.map((r) => ({
            series: `d=${r.d_model}`,
            tokens: r.tokens,
            effect: r.effect,
            low: r.ci_low,
            high: r.ci_high,
          })),
          {
            title: `${claim.paper}: ${claim.statement}`,
            subtitle: `${vs}: ${claim.metric ?? "val_ppl"} ${unit ? "relative change (%)" : "difference"}, mean ` +
              `over seeds with its 95% t-interval (band). The claim is supported where the band lies ` +
              (claim.rule === "not_worse"
                ? `below +${claim.margin ?? 2}% (not worse than the baseline by more than that margin). `
                : `${claim.supports === "lower" ? "below" : "above"} 0. `) +
              `Dashed: least-squares trend in log tokens; ` +
              `past the largest budget it is extrapolation.`,
            yLabel: `↑ Effect (${unit ? "%" : claim.metric})`,
          },
        ),
      ),
    );
  }
  return files;
}
