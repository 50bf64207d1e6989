/**
 * The results database side of the API (re-exported by lib/api/mod.ts and the root mod.ts): SQL over
 * every result, an experiment's plots and report, rebuilding the database from the run cache, and the
 * cache's runs with their live status. DuckDB and the plots are loaded only when called.
 *
 * @module
 */
import type { RebuildReport, RunsRow } from "../runner/results.ts";
import type { QueryResult } from "../store/result.ts";
import { projectPaths } from "../util/paths.ts";
import type { PathsOption } from "./options.ts";
import { refreshClaims } from "./claims.ts";

/**
 * SQL over every result (DuckDB: tables experiments, runs, current_runs, metrics, run_metrics, run_tags,
 * views variant_stats, tagged_runs). `$name` parameters are bound from `params`.
 */
export async function query(
  sql: string,
  params?: Record<string, string | number | boolean | null>,
  opts: PathsOption = {},
): Promise<QueryResult> {
  const { withResults } = await import("../runner/results.ts");
  return await withResults(opts.paths ?? projectPaths(), async (store) => {
    try {
      return await store.query(sql, params);
    } catch (e) {
      if ((e as Error)?.name === "StoreCorruptError") throw e; // withResults rebuilds the database and asks again
      throw new QueryError((e as Error).message, { cause: e });
    }
  });
}

/** A statement DuckDB refused (syntax, unknown table or column, ...): the message is DuckDB's. */
export class QueryError extends Error {
  /** Builds the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "QueryError";
  }
}

/** What {@link report} takes. */
export interface ReportOptions extends PathsOption {
  /** Draw the plots (default true). */
  plot?: boolean;
  /** Lines of the report (table, verdict); default: not printed. */
  print?: (text: string) => void;
}

/**
 * Redraws an experiment's plots from the database and runs its report. Returns the plot files; none
 * when the database holds no run of the experiment.
 */
export async function report(id: string, opts: ReportOptions = {}): Promise<string[]> {
  const paths = opts.paths ?? projectPaths();
  const { loadExperiment } = await import("../runner/plan.ts");
  const { exp } = await loadExperiment(id, paths); // validates the id with a helpful error
  const plot = opts.plot !== false;
  const { withResults } = await import("../runner/results.ts");
  const { plotExperiment } = await import("../plot/mod.ts");
  const files = await withResults(paths, async (store) => {
    const n = await store.query("SELECT count(*)::INTEGER AS n FROM runs WHERE experiment = $id", { id });
    if (n.rows[0].n === 0) return null;
    return plot ? await plotExperiment(store, id, `${paths.plots}/${id}`) : [];
  });
  if (files === null) return [];
  const hook = exp.report;
  const print = opts.print ?? (() => {});
  files.push(
    ...await withResults(paths, async (store) => {
      // The experiment's own report (its table, verdict and extra plots; see `ExperimentSpec.report`).
      const own = hook
        ? await hook({
          experiment: exp.id,
          variants: exp.variants ?? { base: {} },
          query: (sql, params) => store.query(sql, params),
          plotDir: plot ? `${paths.plots}/${exp.id}` : null,
          print,
        })
        : [];
      // The claims this experiment tests: recomputed into the `claims` table and printed under the verdict.
      const rows = await refreshClaims(store, [exp.id]);
      if (rows.length) {
        const { claimsText } = await import("../report/claims.ts");
        print(`\nclaims ledger (${exp.id}; deno task claims):\n${claimsText(rows)}`);
      }
      return own;
    }),
  );
  return files;
}

/** Recreates the results database from the run cache (the source of truth). */
export async function rebuild(opts: PathsOption = {}): Promise<RebuildReport> {
  const paths = opts.paths ?? projectPaths();
  const { rebuildFromCache, withRebuildLock, withResults } = await import("../runner/results.ts");
  return await withRebuildLock(paths, async () => {
    const r = await rebuildFromCache(paths);
    await withResults(paths, (store) => refreshClaims(store)); // the ledger of every experiment in the cache
    return r;
  });
}

/**
 * Every cache entry with its live status (a `running` run whose process died is `interrupted`). Finished runs
 * come from the database unless `verify` is set, which reads and verifies every entry (lib/runner/runs.ts).
 */
export async function runs(opts: PathsOption & { experiment?: string; verify?: boolean } = {}): Promise<RunsRow[]> {
  const { runsRows } = await import("../runner/runs.ts");
  return await runsRows(opts.paths ?? projectPaths(), { experiment: opts.experiment, verify: opts.verify });
}
