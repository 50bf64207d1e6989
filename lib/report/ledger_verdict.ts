/**
 * The one home of the reports' verdicts: each experiment's report takes the supported / not supported /
 * inconclusive word of every claim it prints from the claims ledger (lib/report/claims.ts: paired 95%
 * t-interval over seeds, with its scale), so a report and `deno task claims` cannot disagree. The reports keep
 * their tables and descriptive numbers.
 *
 * @module
 */
import type { ReportContext } from "../experiment/define.ts";
import { type ClaimRow, computeLedger, effectText } from "./claims.ts";
import { claimsOf } from "./scale_study.ts";

/** The ledger rows of the claims `ctx.experiment` tests, from its completed current runs. */
export async function experimentLedger(ctx: Pick<ReportContext, "experiment" | "query">): Promise<ClaimRow[]> {
  return await computeLedger(claimsOf(ctx.experiment), (sql) => ctx.query(sql));
}

/**
 * The ledger's verdict on one claim for a report line, one part per ledger row of the claim (of `variant` only,
 * when given): `claim finedeep-beats-dense: finedeep-L2 vs dense-L2 -3.10% [-5.0, -1.2]: supported at 154k
 * tokens, d=64`.
 */
export function ledgerClause(ledger: ClaimRow[], claim: string, variant?: string): string {
  const rows = ledger.filter((r) => r.claim === claim && (variant === undefined || r.variant === variant));
  if (!rows.length) return `claim ${claim}: no ledger row (needs completed runs of both arms with a common seed)`;
  return `claim ${claim}: ` +
    rows.map((r) =>
      `${r.baseline === "-" ? r.variant : `${r.variant} vs ${r.baseline}`} ${effectText(r)}: ${r.verdict}`
    ).join("; ");
}
