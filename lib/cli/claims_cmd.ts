/**
 * `claims`: the claims ledger (lib/report/claims.ts) computed from the results database and printed as a
 * table (`--format` as `query`); `--by-scale` pivots the scale study's rows (one column per token budget).
 *
 * @module
 */
import { existsSync } from "node:fs";
import { formatResult, type OutputFormat } from "../store/format.ts";
import type { QueryResult } from "../store/result.ts";
import type { ProjectPaths } from "../util/paths.ts";
import * as finelab from "../api/mod.ts";
import { CLAIM_COLUMNS } from "../report/claims.ts";
import { SCALE_STUDY, scaleTable } from "../report/scale_study.ts";
import { UserError } from "./errors.ts";

const NUMERIC: Record<string, string> = {
  d_model: "INTEGER",
  tokens: "BIGINT",
  params: "BIGINT",
  effect: "DOUBLE",
  ci_low: "DOUBLE",
  ci_high: "DOUBLE",
  n_seeds: "INTEGER",
};

/** Options of {@link cmdClaims}. */
export interface ClaimsCmdOptions {
  format: OutputFormat;
  paths: ProjectPaths;
  claim?: string;
  experiment?: string;
  byScale?: boolean;
}

/** Prints the ledger rows (or with `byScale` the scale study's pivot). Unknown claim ids are a UserError. */
export async function cmdClaims(opts: ClaimsCmdOptions): Promise<void> {
  const ids = finelab.declaredClaims().map((c) => c.id);
  if (opts.claim !== undefined && !ids.includes(opts.claim)) {
    throw new UserError(`unknown claim ${JSON.stringify(opts.claim)}; declared claims: ${ids.join(", ")}`);
  }
  if (opts.byScale && opts.experiment !== undefined && opts.experiment !== SCALE_STUDY) {
    throw new UserError(`--by-scale pivots the ${SCALE_STUDY} experiment's rows; drop --experiment or name it`);
  }
  if (!existsSync(opts.paths.db)) {
    throw new UserError(`no results database at ${opts.paths.db}; run an experiment first (deno task exp <id>)`);
  }
  const experiment = opts.byScale ? SCALE_STUDY : opts.experiment;
  const rows = await finelab.claims({ paths: opts.paths, claim: opts.claim, experiment });
  let result: QueryResult;
  if (opts.byScale) {
    const t = scaleTable(rows, finelab.declaredClaims());
    result = {
      columns: t.header.map((name) => ({ name, type: "VARCHAR" })),
      rows: t.rows.map((r) => Object.fromEntries(t.header.map((h) => [h, r[h] ?? null]))),
    } as unknown as QueryResult;
  } else {
    result = {
      columns: CLAIM_COLUMNS.map((name) => ({ name, type: NUMERIC[name] ?? "VARCHAR" })),
      rows: rows.map((r) => Object.fromEntries(CLAIM_COLUMNS.map((c) => [c, r[c]]))),
    } as unknown as QueryResult;
  }
  console.log(formatResult(result, opts.format));
}
