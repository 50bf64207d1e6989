/**
 * Commands over the results database: `query`, `plot`, `db rebuild`, `runs`. Each calls the API
 * (lib/api/mod.ts) and prints.
 *
 * @module
 */
import { formatResult, type OutputFormat } from "../store/format.ts";
import type { QueryResult } from "../store/result.ts";
import type { RunsRow } from "../runner/results.ts";
import type { ProjectPaths } from "../util/paths.ts";
import * as finelab from "../api/mod.ts";
import { UserError } from "./errors.ts";

/** `query`: prints the rows of a SQL statement; a bad query is a UserError carrying DuckDB's message. */
export async function cmdQuery(sql: string, opts: { format: OutputFormat; paths: ProjectPaths }): Promise<void> {
  if (!sql.trim()) {
    throw new UserError(
      `empty SQL statement. Pass one, e.g. deno task query "SELECT run_id, val_ppl FROM runs"; ` +
        `tables: experiments, runs, current_runs, metrics, run_metrics (see README "Results database").`,
    );
  }
  let r: QueryResult;
  try {
    r = await finelab.query(sql, undefined, { paths: opts.paths });
  } catch (e) {
    if (!(e instanceof finelab.QueryError)) throw e;
    throw new UserError(
      `${(e as Error).message.split("\n")[0]}\nFix the SQL statement and run again. Tables: experiments, runs, ` +
        `current_runs, metrics, run_metrics; \`deno task query "DESCRIBE runs"\` lists the columns of runs; ` +
        `see README "Results database".`,
    );
  }
  console.log(formatResult(r, opts.format));
}

/** `plot <id>`: redraws the experiment's plots from the database. */
export async function cmdPlot(id: string, opts: { paths: ProjectPaths }): Promise<void> {
  const files = await finelab.report(id, { paths: opts.paths });
  if (files.length === 0) {
    throw new UserError(`no results for ${id} in ${opts.paths.db}; run \`deno task exp ${id}\` first, then plot again`);
  }
  for (const f of files) console.log(f);
}

/** `db rebuild`: recreates the database from the run cache (the source of truth). */
export async function cmdDb(action: string, opts: { paths: ProjectPaths }): Promise<void> {
  if (action === "path") return console.log(opts.paths.db);
  const t0 = performance.now();
  const r = await finelab.rebuild({ paths: opts.paths });
  console.log(
    `rebuilt ${opts.paths.db} from ${opts.paths.cache}: ${r.runs} runs, ${r.metrics} metric rows` +
      `${r.corrupt.length ? `, ${r.corrupt.length} corrupt entries left out` : ""} ` +
      `(${((performance.now() - t0) / 1000).toFixed(2)} s)`,
  );
}

/** `runs`: lists cache entries and their live status (a `running` run whose process died is interrupted). */
export async function cmdRuns(
  opts: { experiment?: string; format?: OutputFormat; paths: ProjectPaths },
): Promise<void> {
  const rows = await finelab.runs({ paths: opts.paths, experiment: opts.experiment });
  const columns: (keyof RunsRow)[] = [
    "experiment",
    "run_id",
    "hash",
    "status",
    "step",
    "steps",
    "val_ppl",
    "heartbeat",
    "attempts",
    "note",
  ];
  const types: Partial<Record<keyof RunsRow, string>> = {
    step: "INTEGER",
    steps: "INTEGER",
    val_ppl: "DOUBLE",
    attempts: "INTEGER",
  };
  const result = {
    columns: columns.map((name) => ({ name, type: types[name] ?? "VARCHAR" })),
    rows: rows.map((r) => Object.fromEntries(columns.map((c) => [c, r[c] ?? null]))),
  } as unknown as QueryResult;
  console.log(formatResult(result, opts.format ?? "table"));
}
