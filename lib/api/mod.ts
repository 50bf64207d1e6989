/**
 * finelab as a library: the whole pipeline (plan, train with the cache, store, report) behind a few
 * functions, for scripts, notebooks (Deno's Jupyter kernel) and cluster tasks. The CLI (lib/cli) only
 * parses arguments, calls these and prints. The root `mod.ts` re-exports them.
 *
 * Every function takes `paths` (default: `projectPaths()`, i.e. `results/` or `FINELAB_RESULTS`).
 *
 * @module
 */
import type { BackendName } from "../core/config.ts";
import { type Overrides, readConfigFile } from "../experiment/expand.ts";
import { loadExperiment, makePlan, type Plan } from "../runner/plan.ts";
import { type ExecuteOptions, executePlan, type RunOutcome, verifyPlan, type VerifyResult } from "../runner/execute.ts";
import { readRecord } from "../runner/cache.ts";
import { runOne as runOneInRunner, type RunOneOptions, writeRunRequests } from "../runner/run_one.ts";
import {
  experimentRow,
  ingestRecords,
  rebuildFromCache,
  type RebuildReport,
  type RunsRow,
  runsRows,
  summarySql,
  withRebuildLock,
  withResults,
} from "../runner/results.ts";
import type { QueryResult } from "../store/result.ts";
import { StoreCorruptError } from "../store/mod.ts";
import { formatResult } from "../store/format.ts";
import { plotExperiment } from "../plot/mod.ts";
import { type ProjectPaths, projectPaths } from "../util/paths.ts";
import { type Claim, type ClaimRow, claimsText, claimsWriteSql, computeLedger } from "../report/claims.ts";
import { CLAIMS } from "../report/claims_declared.ts";

export type { Plan, QueryResult, RebuildReport, RunOutcome, RunsRow, VerifyResult };

/** Where results live (default: `projectPaths()`). */
export interface PathsOption {
  paths?: ProjectPaths;
}

/** What {@link plan} takes: the command line's `--scale`, `--set`, `--config` and `--backend`. */
export interface PlanOptions extends PathsOption {
  /** Scale preset (default `default`). */
  scale?: string;
  /** `path=value` overrides, e.g. `train.lr=3e-4`. */
  set?: string[];
  /** YAML files of overrides (`data:`, `model:`, `train:`, `seeds:`, `backend:`). */
  config?: string[];
  /** Backend request (default: the experiment's, else `auto`). */
  backend?: BackendName;
}

const planOverrides = new WeakMap<Plan, Overrides>();

/**
 * Loads `experiments/<id>.ts`, expands and validates it, resolves the backend and hashes every run.
 * Trains nothing. Throws a ConfigError / ExperimentError listing every problem.
 */
export async function plan(id: string, opts: PlanOptions = {}): Promise<Plan> {
  const paths = opts.paths ?? projectPaths();
  const files = [];
  for (const f of opts.config ?? []) files.push(await readConfigFile(f));
  const overrides: Overrides = { files, sets: opts.set ?? [], scale: opts.scale, backend: opts.backend };
  const p = await makePlan(await loadExperiment(id, paths), { paths, overrides });
  planOverrides.set(p, overrides);
  return p;
}

/** What {@link run} takes. */
export interface RunOptions extends PlanOptions, Pick<ExecuteOptions, "progress" | "log"> {
  /** Retrain cached runs. */
  force?: boolean;
  /** Draw the plots (default true). */
  plot?: boolean;
  /** Lines of the summary table and the experiment's report (table, verdict); default: not printed. */
  print?: (text: string) => void;
}

/** What {@link run} did. */
export interface RunResult {
  plan: Plan;
  /** One per run of the plan: trained, cached, failed, ... with its record. */
  outcomes: RunOutcome[];
  /** The per-variant summary (mean and std over seeds of the experiment's metrics). */
  summary: QueryResult;
  /** Plot files written. */
  plots: string[];
}

/**
 * Runs an experiment (an id, or a {@link plan} already made): trains what is not cached, stores every
 * record in the results database, draws the plots and runs the experiment's report.
 */
export async function run(experiment: string | Plan, opts: RunOptions = {}): Promise<RunResult> {
  const paths = opts.paths ?? projectPaths();
  const p = typeof experiment === "string" ? await plan(experiment, { ...opts, paths }) : experiment;
  const overrides = planOverrides.get(p) ?? { scale: p.scale, backend: p.backend.name };
  await writeRunRequests(p, overrides, paths); // so runOne(hash) can train any planned run by hand
  const outcomes = await executePlan(p, { paths, force: opts.force, progress: opts.progress, log: opts.log });
  // Parent runs of other experiments go into the database too (under their own experiment id).
  const parents = (await Promise.all(p.dependencies.map((d) => readRecord(d.paths)))).filter((r) => r !== null);
  const plot = opts.plot !== false;
  const plots = await withResults(paths, async (store) => {
    await ingestRecords(store, [...outcomes.map((x) => x.record), ...parents], {
      paths,
      experiment: experimentRow(p, paths),
    });
    return plot ? await plotExperiment(store, p.experiment.id, `${paths.plots}/${p.experiment.id}`) : [];
  });
  const metrics = p.experiment.metrics ?? ["val_loss", "val_ppl"];
  const summary = await query(summarySql(p.experiment.id, metrics), undefined, { paths });
  opts.print?.(formatResult(summary, "table"));
  plots.push(...await runReport(p.experiment, { paths, plot, print: opts.print }));
  return { plan: p, outcomes, summary, plots };
}

/**
 * Trains exactly one planned run, named by its hash (what a cluster array task calls): see
 * lib/runner/run_one.ts. Never writes the database.
 */
export function runOne(hash: string, opts: Partial<RunOneOptions> = {}): Promise<RunOutcome> {
  return runOneInRunner(hash, { ...opts, paths: opts.paths ?? projectPaths() });
}

/** Retrains every run of a plan from scratch in a scratch folder and compares every logged number bit for bit. */
export function verify(p: Plan, opts: PathsOption & Pick<ExecuteOptions, "progress"> = {}): Promise<VerifyResult[]> {
  return verifyPlan(p, { paths: opts.paths ?? projectPaths(), progress: opts.progress });
}

/**
 * SQL over every result (DuckDB: tables experiments, runs, current_runs, metrics, run_metrics, views
 * variant_stats). `$name` parameters are bound from `params`.
 */
export function query(
  sql: string,
  params?: Record<string, string | number | boolean | null>,
  opts: PathsOption = {},
): Promise<QueryResult> {
  return withResults(opts.paths ?? projectPaths(), async (store) => {
    try {
      return await store.query(sql, params);
    } catch (e) {
      if (e instanceof StoreCorruptError) throw e; // withResults rebuilds the database and asks again
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
  const { exp } = await loadExperiment(id, paths); // validates the id with a helpful error
  const plot = opts.plot !== false;
  const files = await withResults(paths, async (store) => {
    const n = await store.query("SELECT count(*)::INTEGER AS n FROM runs WHERE experiment = $id", { id });
    if (n.rows[0].n === 0) return null;
    return plot ? await plotExperiment(store, id, `${paths.plots}/${id}`) : [];
  });
  if (files === null) return [];
  files.push(...await runReport(exp, { paths, plot, print: opts.print }));
  return files;
}

/** Recreates the results database from the run cache (the source of truth). */
export function rebuild(opts: PathsOption = {}): Promise<RebuildReport> {
  const paths = opts.paths ?? projectPaths();
  return withRebuildLock(paths, async () => {
    const r = await rebuildFromCache(paths);
    await withResults(paths, (store) => refreshClaims(store)); // the ledger of every experiment in the cache
    return r;
  });
}

/** What {@link claims} takes: only the claims with this id, only the rows of this experiment. */
export interface ClaimsOptions extends PathsOption {
  claim?: string;
  experiment?: string;
}

/**
 * The claims ledger (lib/report/claims.ts, declared in lib/report/claims_declared.ts) computed from the
 * database's current runs: one row per claim, experiment testing it and scale point. Reads only.
 */
export async function claims(opts: ClaimsOptions = {}): Promise<ClaimRow[]> {
  const chosen = CLAIMS.filter((c) => opts.claim === undefined || c.id === opts.claim);
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
 * Recomputes the ledger rows of the claims that `experiments` test (all when omitted) and replaces
 * their rows in the `claims` table; returns the rows of those experiments.
 */
async function refreshClaims(
  store: { query: (sql: string) => Promise<QueryResult> },
  experiments?: string[],
): Promise<ClaimRow[]> {
  const exps = experiments ?? [...new Set(CLAIMS.flatMap((c) => c.tests.map((t) => t.experiment)))];
  const chosen = CLAIMS.filter((c) => c.tests.some((t) => exps.includes(t.experiment)))
    .map((c) => ({ ...c, tests: c.tests.filter((t) => exps.includes(t.experiment)) }));
  const rows = await computeLedger(chosen, (sql) => store.query(sql));
  for (const sql of claimsWriteSql(exps, rows)) await store.query(sql);
  return rows;
}

/** Every cache entry with its live status (a `running` run whose process died is `interrupted`). */
export function runs(opts: PathsOption & { experiment?: string } = {}): Promise<RunsRow[]> {
  return runsRows(opts.paths ?? projectPaths(), opts.experiment);
}

/**
 * Runs the experiment's own `report` hook (its table, verdict and extra plots; see
 * `ExperimentSpec.report`) over the results database. Returns the plot files it wrote.
 */
async function runReport(
  exp: Plan["experiment"],
  opts: { paths: ProjectPaths; plot: boolean; print?: (text: string) => void },
): Promise<string[]> {
  const hook = exp.report;
  const print = opts.print ?? (() => {});
  return await withResults(opts.paths, async (store) => {
    const files = hook
      ? await hook({
        experiment: exp.id,
        variants: exp.variants ?? { base: {} },
        query: (sql, params) => store.query(sql, params),
        plotDir: opts.plot ? `${opts.paths.plots}/${exp.id}` : null,
        print,
      })
      : [];
    // The claims this experiment tests: recomputed into the `claims` table and printed under the verdict.
    const rows = await refreshClaims(store, [exp.id]);
    if (rows.length) print(`\nclaims ledger (${exp.id}; deno task claims):\n${claimsText(rows)}`);
    return files;
  });
}
