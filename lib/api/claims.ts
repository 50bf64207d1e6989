/**
 * The claims ledger side of the API: each paper claim (declared once in lib/report/claims_declared.ts) computed
 * from the database's current runs (lib/report/claims.ts), and the `claims` table kept current after each report
 * and rebuild. DuckDB is loaded only when called.
 *
 * @module
 */
import type { Claim, ClaimRow } from "../report/claims.ts";
import { CLAIMS } from "../report/claims_declared.ts";
import type { QueryResult } from "../store/result.ts";
import { projectPaths } from "../util/paths.ts";
import type { PathsOption } from "./options.ts";

/** What {@link claims} takes: only the claims with this id, only the rows of this experiment. */
export interface ClaimsOptions extends PathsOption {
  claim?: string;
  experiment?: string;
}

/**
 * The claims ledger computed from the database's current runs: one row per claim, experiment testing it and
 * scale point. Reads only.
 */
export async function claims(opts: ClaimsOptions = {}): Promise<ClaimRow[]> {
  const chosen = CLAIMS.filter((c) => opts.claim === undefined || c.id === opts.claim);
  const { computeLedger } = await import("../report/claims.ts");
  const { withResults } = await import("../runner/results.ts");
  const rows = await withResults(
    opts.paths ?? projectPaths(),
    (store) => computeLedger(chosen, (sql) => store.query(sql)),
  );
  return rows.filter((r) => opts.experiment === undefined || r.experiment === opts.experiment);
}

/** The declared claims (ids, papers, statements, tests). */
export function declaredClaims(): readonly Claim[] {
  return CLAIMS;
}

/**
 * Recomputes the ledger rows of the claims that `experiments` test (all when omitted) and replaces their rows
 * in the `claims` table; returns the rows of those experiments.
 */
export async function refreshClaims(
  store: { query: (sql: string) => Promise<QueryResult> },
  experiments?: string[],
): Promise<ClaimRow[]> {
  const { claimsWriteSql, computeLedger } = await import("../report/claims.ts");
  const exps = experiments ?? [...new Set(CLAIMS.flatMap((c) => c.tests.map((t) => t.experiment)))];
  const chosen = CLAIMS.filter((c) => c.tests.some((t) => exps.includes(t.experiment)))
    .map((c) => ({ ...c, tests: c.tests.filter((t) => exps.includes(t.experiment)) }));
  const rows = await computeLedger(chosen, (sql) => store.query(sql));
  for (const sql of claimsWriteSql(exps, rows)) await store.query(sql);
  return rows;
}
