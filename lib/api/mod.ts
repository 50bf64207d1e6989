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
import type { ProgressFn } from "../data/build.ts";
import type { Overrides } from "../experiment/expand.ts";
import type { Experiment } from "../experiment/define.ts";
import type { Plan } from "../runner/plan.ts";
import type { ExecuteOptions, RunOutcome } from "../runner/execute.ts";
import type { VerifyResult } from "../runner/verify.ts";
import { MemoryError } from "../runner/memory_error.ts";
import { addTags, checkTag, TagError } from "../runner/tags.ts";
import { PREEMPTED_EXIT } from "../runner/interrupt.ts";
import type { RunOneOptions } from "../runner/run_one.ts";
import type { RebuildReport, RunsRow } from "../runner/results.ts";
import type { QueryResult } from "../store/result.ts";
import { formatResult } from "../store/format.ts";
import type { SlurmSettings, Submission } from "../executor/slurm/mod.ts";
import {
  memoOutputs,
  type MemoPlan,
  memoPlan,
  memoPlanOf,
  type MemoRequest,
  saveOutputs,
  savePlan,
  stampInputs,
} from "./noop.ts";
import { projectPaths } from "../util/paths.ts";
import type { PathsOption } from "./options.ts";
import { query, report } from "./results.ts";

export type { PathsOption } from "./options.ts";
export { query, QueryError, rebuild, report, type ReportOptions, runs } from "./results.ts";
export { claims, type ClaimsOptions, declaredClaims } from "./claims.ts";

export type {
  BackendName,
  Plan,
  QueryResult,
  RebuildReport,
  RunOutcome,
  RunsRow,
  SlurmSettings,
  Submission,
  VerifyResult,
};
export { checkTag, MemoryError, PREEMPTED_EXIT, TagError };

/** What {@link plan} takes: the command line's `--scale`, `--set`, `--config` and `--backend`. */
export interface PlanOptions extends PathsOption {
  /** Scale preset (default `default`). */
  scale?: string;
  /** `path=value` overrides, e.g. `train.lr=3e-4` (a comma list is a grid axis). */
  set?: string[];
  /** YAML files of overrides (`data:`, `model:`, `train:`, `seeds:`, `backend:`, `slurm:`). */
  config?: string[];
  /** Backend request (default: the experiment's, else `auto`). */
  backend?: BackendName;
  /**
   * Plan with the overrides recorded in this Slurm submission (what its collect job does) instead of
   * `scale`, `set`, `config` and `backend`.
   */
  submission?: string;
  /** Progress and log lines of a dataset built while planning (BPE training, tokenising). */
  data?: { progress?: ProgressFn; log?: (m: string) => void };
}

/** How a plan was asked for (its overrides and parsed --config files, its memo request), kept beside it. */
interface PlanRequest {
  overrides: Overrides;
  files: NonNullable<Overrides["files"]>;
  memo?: MemoRequest;
}

const planRequests = new WeakMap<Plan, PlanRequest>();

function requestOf(p: Plan): PlanRequest {
  return planRequests.get(p) ?? { overrides: { scale: p.scale, backend: p.backend.name }, files: [] };
}

/** The experiment module `experiments/<id>.ts` (its definition); an unknown id is an ExperimentError. */
export async function experiment(id: string, opts: PathsOption = {}): Promise<Experiment> {
  const { loadExperiment } = await import("../runner/plan.ts");
  return (await loadExperiment(id, opts.paths ?? projectPaths())).exp;
}

/**
 * Loads `experiments/<id>.ts`, expands and validates it, resolves the backend and hashes every run.
 * Trains nothing. Throws a ConfigError / ExperimentError listing every problem.
 */
export async function plan(id: string, opts: PlanOptions = {}): Promise<Plan> {
  const paths = opts.paths ?? projectPaths();
  const { loadExperiment, makePlan } = await import("../runner/plan.ts");
  const loaded = await loadExperiment(id, paths);
  let request: PlanRequest;
  if (opts.submission !== undefined) {
    const { findSubmission } = await import("../executor/slurm/mod.ts");
    const overrides = (await findSubmission(id, opts.submission, paths)).overrides;
    request = { overrides, files: overrides.files ?? [] };
  } else {
    const { readConfigFile } = await import("../experiment/expand.ts");
    const files = [];
    for (const f of opts.config ?? []) files.push(await readConfigFile(f));
    request = { overrides: { files, sets: opts.set ?? [], scale: opts.scale, backend: opts.backend }, files };
    request.memo = memoRequest(id, opts);
  }
  const stamped = request.memo ? await stampInputs(paths, request.memo) : null; // before planning reads them
  const p = await makePlan(loaded, { paths, overrides: request.overrides, data: opts.data });
  planRequests.set(p, request);
  if (stamped) await savePlan(paths, stamped, p);
  return p;
}

function memoRequest(id: string, o: PlanOptions): MemoRequest {
  return { id, scale: o.scale, set: o.set, config: o.config, backend: o.backend };
}

/**
 * True when a plan is the experiment's declared one: no `set` or `config` overrides (any scale and
 * backend). Only a declared plan's runs become the experiment's current results (`current_runs`, plots,
 * verdict); other runs are stored beside them.
 */
export function isDeclared(p: Plan): boolean {
  const o = requestOf(p).overrides;
  return !(o.sets?.length || o.files?.length);
}

/** Where a planned run stands: in the cache, being trained by another process, or still to train. */
export type RunState = "cached" | "training elsewhere" | "to train";

/** What {@link run} takes. */
export interface RunOptions extends PlanOptions, Pick<ExecuteOptions, "progress" | "log"> {
  /** Retrain cached runs (also skips the memory check). */
  force?: boolean;
  /**
   * Refuse, with a {@link MemoryError} and before anything is allocated, a plan whose largest run to train
   * would not fit in the machine's available memory (default true).
   */
  memoryCheck?: boolean;
  /** Draw the plots (default true). */
  plot?: boolean;
  /** Lines of the summary table and the experiment's report (table, verdict); default: not printed. */
  print?: (text: string) => void;
  /** Afterwards, retrain every run from scratch in a scratch folder and compare every number bit for bit. */
  verify?: boolean;
  /**
   * Tag the plan's runs with this name (lib/runner/tags.ts): recorded with them, cached runs included (a tag
   * is not part of a run's hash, so nothing retrains for it); query them with
   * `SELECT ... FROM tagged_runs WHERE tag = '<name>'`. A tagged plan is not the declared one: the
   * experiment's current results, plots and verdict stay those of its declared plan. A bad name is a
   * {@link TagError}, thrown before anything trains.
   */
  tag?: string;
  /**
   * The collect job of this Slurm submission: train nothing, take the outcomes from the cache, store and
   * report them, and write the submission's `collected.json` (see {@link submit}).
   */
  collect?: string;
}

/** What {@link run} did. */
export interface RunResult {
  plan: Plan;
  /** One per run of the plan: trained, cached, failed, ... with its record. */
  outcomes: RunOutcome[];
  /** Whether these are the experiment's declared runs: {@link isDeclared} and no `tag`. */
  declared: boolean;
  /**
   * The per-variant summary (mean and std over seeds of the experiment's metrics) of the experiment's
   * current runs, or of this plan's runs when it is not the declared plan.
   */
  summary: QueryResult;
  /** Plot files written (none for a plan that is not the declared one). */
  plots: string[];
  /** With `verify`: one comparison per run. */
  verified?: VerifyResult[];
  /** With `collect`: the collect job's exit code (1: a run is missing or failed). */
  collected?: number;
}

/**
 * Runs an experiment (an id, or a {@link plan} already made): trains what is not cached, stores every
 * record in the results database and, for the declared plan, draws the plots and runs the experiment's
 * report.
 */
export async function run(experiment: string | Plan, opts: RunOptions = {}): Promise<RunResult> {
  const paths = opts.paths ?? projectPaths();
  const p = typeof experiment === "string"
    ? await plan(experiment, { ...opts, paths, submission: opts.submission ?? opts.collect })
    : experiment;
  if (opts.tag !== undefined) checkTag(opts.tag);
  const { overrides } = requestOf(p);
  let outcomes: RunOutcome[];
  if (opts.collect !== undefined) {
    const { collectOutcomes } = await import("../executor/slurm/mod.ts");
    outcomes = await collectOutcomes(p, opts.log ?? ((m) => console.error(m)));
  } else {
    const { checkMemory } = await import("../runner/memory.ts");
    if (opts.memoryCheck !== false && !opts.force) await checkMemory(p);
    const { writeRunRequests } = await import("../runner/run_one.ts");
    await writeRunRequests(p, overrides, paths); // so runOne(hash) can train any planned run by hand
    const { executePlan } = await import("../runner/execute.ts");
    outcomes = await executePlan(p, { paths, force: opts.force, progress: opts.progress, log: opts.log });
  }
  const declared = isDeclared(p) && opts.tag === undefined;
  if (opts.tag !== undefined) {
    const runs = outcomes.map((x) => ({ hash: x.run.hash, experiment: x.run.config.experiment, run_id: x.run.run_id }));
    await addTags(paths, opts.tag, runs);
  }
  const { experimentRow, ingestRecords, summarySql, withResults } = await import("../runner/results.ts");
  // Parent runs of other experiments go into the database too (under their own experiment id).
  const { readRecord } = await import("../runner/cache.ts");
  const parents = (await Promise.all(p.dependencies.map((d) => readRecord(d.paths)))).filter((r) => r !== null);
  await withResults(paths, (store) =>
    ingestRecords(store, [...outcomes.map((x) => x.record), ...parents], {
      paths,
      experiment: declared ? experimentRow(p, paths) : null,
    }));
  const metrics = p.experiment.metrics ?? ["val_loss", "val_ppl"];
  const hashes = declared ? undefined : p.runs.map((r) => r.hash);
  const summary = await query(summarySql(p.experiment.id, metrics, hashes), undefined, { paths });
  const printed: string[] = [];
  const print = (t: string) => {
    printed.push(t);
    opts.print?.(t);
  };
  print(formatResult(summary, "table"));
  // The experiment's plots and its report (table, verdict) come from its declared plan only.
  const plots = declared ? await report(p.experiment.id, { paths, plot: opts.plot, print }) : [];
  const result: RunResult = { plan: p, outcomes, declared, summary, plots };
  const memo = requestOf(p).memo;
  const plain = !opts.force && !opts.verify && opts.collect === undefined && opts.tag === undefined;
  if (memo && plain && outcomes.every((x) => x.record.summary?.status === "completed")) {
    // A rerun of the same request answers from this memo while nothing changes (see lib/api/noop.ts).
    await saveOutputs(paths, memo, { declared, plot: opts.plot !== false, printed, plots });
  }
  if (opts.verify) {
    (opts.log ?? ((m) => console.error(m)))(`verify: retraining ${p.runs.length} runs from scratch...`);
    result.verified = await verify(p, { paths, progress: opts.progress });
  }
  if (opts.collect !== undefined) {
    const { writeCollected } = await import("../executor/slurm/mod.ts");
    result.collected = await writeCollected(paths, opts.collect, p, outcomes);
  }
  return result;
}

/** True when FINELAB_FAULT injects faults (lib/util/fault.ts): they need the whole pipeline to run. */
function faultsInjected(): boolean {
  try {
    return !!Deno.env.get("FINELAB_FAULT");
  } catch {
    return false;
  }
}

/** What {@link rerun} found: the last run of the same request, unchanged since. */
export interface Rerun {
  plan: MemoPlan;
  /** Whether these are the experiment's declared runs (see {@link RunResult.declared}). */
  declared: boolean;
  /** Plot files of that run (still current). */
  plots: string[];
}

/**
 * A no-op rerun: when nothing changed since the same request last completed (code, data, config files,
 * every run's cache entry, the results database and the plots, by file stamps; see lib/api/noop.ts),
 * passes what that run printed (summary table, report) to `print` and returns its plan, without loading
 * the planner, the trainer, DuckDB or the plots. Returns null when something changed (and for `force`,
 * `verify`, `tag`, `collect`, `submission`, or while FINELAB_FAULT injects faults): call {@link run}.
 */
export async function rerun(id: string, opts: RunOptions = {}): Promise<Rerun | null> {
  if (opts.force || opts.verify || opts.tag !== undefined || opts.collect !== undefined) return null;
  if (opts.submission !== undefined || faultsInjected()) return null; // injected faults need the whole pipeline
  const paths = opts.paths ?? projectPaths();
  const hit = await memoOutputs(paths, memoRequest(id, opts), opts.plot !== false);
  if (!hit) return null;
  for (const t of hit.outputs.printed) opts.print?.(t);
  return { plan: hit.plan, declared: hit.outputs.declared, plots: hit.outputs.plots };
}

/** One line of {@link preview}: a run of the plan, or a parent run of another experiment. */
export interface PreviewRow {
  /** `run_id`, or `(parent) experiment/run_id` for a parent of another experiment. */
  label: string;
  hash: string;
  state: RunState;
  /** `experiment/run_id` of the run it starts from, or null. */
  from: string | null;
}

/** Where the run whose cache folder is `dir` stands, from its cache entry and lock. */
async function entryState(): Promise<(dir: string) => Promise<RunState>> {
  const { isFinished, entryPaths } = await import("../runner/cache.ts");
  const { isLocked } = await import("../runner/lock.ts");
  return async (dir) => {
    const e = entryPaths(dir.slice(0, dir.lastIndexOf("/")), dir.slice(dir.lastIndexOf("/") + 1));
    return await isFinished(e) ? "cached" : isLocked(e.lock) ? "training elsewhere" : "to train";
  };
}

/** What {@link preview} returns: the plan's experiment, scale and backend, its number of runs, one row per run. */
export interface Preview {
  plan: Pick<MemoPlan, "experiment" | "scale" | "backend">;
  runs: number;
  rows: PreviewRow[];
}

/**
 * What `exp --dry-run` shows: the plan's runs (parents of other experiments first) with where each stands.
 * Answers from the memo of the same request when no input changed since it was planned (no planner
 * loaded); else plans (see {@link plan}).
 */
export async function preview(id: string, opts: PlanOptions & { memoOnly?: false }): Promise<Preview>;
/** With `memoOnly`: null instead of planning when the memo does not answer. */
export async function preview(id: string, opts: PlanOptions & { memoOnly: true }): Promise<Preview | null>;
export async function preview(id: string, opts: PlanOptions & { memoOnly?: boolean } = {}): Promise<Preview | null> {
  const paths = opts.paths ?? projectPaths();
  const request = memoRequest(id, opts);
  // Every run unchanged since a run of this request completed: all cached, no cache entry to inspect.
  const done = opts.submission === undefined ? await memoOutputs(paths, request, null) : null;
  const cached = done?.plan ?? (opts.submission === undefined ? await memoPlan(paths, request) : null);
  if (!cached && opts.memoOnly) return null;
  const state = done ? () => Promise.resolve<RunState>("cached") : await entryState();
  const mp = cached ?? memoPlanOf(await plan(id, opts));
  const rows: PreviewRow[] = [];
  for (const r of mp.runs) {
    rows.push({
      label: r.dependency ? `(parent) ${r.dependency}` : r.run_id,
      hash: r.hash,
      state: await state(r.dir),
      from: r.parent,
    });
  }
  return {
    plan: { experiment: mp.experiment, scale: mp.scale, backend: mp.backend },
    runs: mp.runs.filter((r) => !r.dependency).length,
    rows,
  };
}

/** What {@link submit} takes. */
export interface SubmitOptions extends PlanOptions {
  /** Slurm settings (after the experiment module's `slurm` and the `--config` files' `slurm:` keys). */
  slurm?: SlurmSettings;
}

/**
 * Submits an experiment (an id, or a {@link plan} already made) to Slurm (lib/executor/slurm): one job array
 * per dependency level of its runs still to train, each task `exp --run <hash>`, and a collect job that
 * stores and reports them (`run(id, { collect })`). Returns the submission; follow it with the CLI's
 * `exp <id> --watch` or lib/executor/slurm/status.ts.
 */
export async function submit(experiment: string | Plan, opts: SubmitOptions = {}): Promise<Submission> {
  const paths = opts.paths ?? projectPaths();
  const p = typeof experiment === "string" ? await plan(experiment, { ...opts, paths }) : experiment;
  const { overrides, files } = requestOf(p);
  const { submitPlan } = await import("../executor/slurm/mod.ts");
  return await submitPlan(p, { paths, overrides, files, settings: opts.slurm });
}

/**
 * Trains exactly one planned run, named by its hash (what a cluster array task calls): see
 * lib/runner/run_one.ts. Never writes the database. A run stopped by `preempt` rejects with an error named
 * `Preempted` (checkpoint written; the next call resumes it).
 */
export async function runOne(hash: string, opts: Partial<RunOneOptions> = {}): Promise<RunOutcome> {
  const { runOne } = await import("../runner/run_one.ts");
  return await runOne(hash, { ...opts, paths: opts.paths ?? projectPaths() });
}

/**
 * Marks the run this process is training as interrupted and releases its lock (synchronous): call it from a
 * SIGINT/SIGTERM handler before exiting, so the next run of the same command resumes it.
 */
export { markInterrupted } from "../runner/interrupt.ts";

/**
 * Listens for SIGINT/SIGTERM with a handler on the main thread and a watchdog worker beside it that ends the
 * process (exit {@link INTERRUPTED_EXIT}, attempt end line written) when the main thread is blocked inside a
 * long step. Returns the function that removes both.
 */
export { guardSignals, INTERRUPTED_EXIT } from "../runner/signal_guard.ts";

/** Retrains every run of a plan from scratch in a scratch folder and compares every logged number bit for bit. */
export async function verify(
  p: Plan,
  opts: PathsOption & Pick<ExecuteOptions, "progress"> = {},
): Promise<VerifyResult[]> {
  const { verifyPlan } = await import("../runner/verify.ts");
  return await verifyPlan(p, { paths: opts.paths ?? projectPaths(), progress: opts.progress });
}
