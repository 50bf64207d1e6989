/**
 * Execution: train every planned run that is not already in the cache, one lock per
 * run so concurrent runners never train the same hash twice, resuming interrupted
 * runs from their last checkpoint.
 *
 * @module
 */
import type { Dataset } from "../data/types.ts";
import { loadDataset } from "../data/mod.ts";
import { initBackend } from "../backends/mod.ts";
import { train, type TrainProgress } from "../train/mod.ts";
import {
  appendAttempt,
  emptyStatus,
  type EntryPaths,
  fileChecksums,
  HEARTBEAT_S,
  inspectEntry,
  isFinished,
  liveMetricsSink,
  readRecord,
  removeTempFiles,
  STARTED_FILES,
  writeManifest,
  writeResults,
  writeStatus,
} from "./cache.ts";
import { faultPoint } from "../util/fault.ts";
import { type Lock, tryLock, waitLock } from "./lock.ts";
import { onInterrupt } from "./interrupt.ts";
import type { HashedRun, Plan } from "./plan.ts";
import type { RunManifest, RunRecord, RunStatusRecord, RunSummary } from "../core/records.ts";
import { baseEnvironment } from "./env.ts";
import { detectDivergence } from "./divergence.ts";
import { claimInterrupt, publishRun, publishStep, writeInterruptedSync } from "./signal_guard.ts";
import type { ProjectPaths } from "../util/paths.ts";

/** What the trainer reports while it runs. */
export type StepProgress = TrainProgress;

/** A progress display for one run (the CLI draws a bar on a terminal, lines in a pipe). */
export interface ProgressSink {
  update(p: StepProgress): void;
  done(message: string): void;
}

/** How a run ended up in the results. */
export type RunAction = "cached" | "trained" | "resumed" | "waited" | "failed" | "diverged";

/** Outcome of one planned run. */
export interface RunOutcome {
  run: HashedRun;
  action: RunAction;
  record: RunRecord;
}

/** Options of {@link executePlan}. */
export interface ExecuteOptions {
  paths: ProjectPaths;
  /** Retrain even when the cache has a finished run (old checkpoints are discarded). */
  force?: boolean;
  /** Progress display per run. */
  progress?: (run: HashedRun, index: number, total: number) => ProgressSink;
  /** Log line sink (default console.error). */
  log?: (msg: string) => void;
  /** How long to wait for a run another process is training (default: forever). */
  waitTimeoutMs?: number;
  /** Asked before every training step; true checkpoints the run and throws a `Preempted` (lib/train). */
  preempt?: () => boolean;
}

const datasets = new Map<string, Promise<Dataset>>();

function dataset(run: HashedRun, paths: ProjectPaths): Promise<Dataset> {
  const key = run.hash_inputs.data;
  let p = datasets.get(key);
  if (!p) {
    p = loadDataset(run.config.data, { root: paths.root, cacheDir: paths.results });
    datasets.set(key, p);
  }
  return p;
}

async function removeCheckpoints(p: EntryPaths): Promise<void> {
  for (const f of ["checkpoints", "summary.json", "metrics.jsonl"]) {
    await Deno.remove(`${p.dir}/${f}`, { recursive: true }).catch(() => {});
  }
}

/** Marks a run stopped by a signal as interrupted (status, attempts) and releases its lock; synchronous. */
function interrupted(current: { paths: EntryPaths; lock: Lock; status: RunStatusRecord; hostname: string }): void {
  // The signal watchdog (lib/runner/signal_guard.ts) may have written the end line already: only one side does.
  if (!claimInterrupt()) return;
  writeInterruptedSync(current, current.status.step ?? 0, "stopped by a signal");
  current.lock.release();
}

/** Trains one run while holding its lock; writes manifest, status, results (also used by lib/runner/verify.ts). */
export async function trainLocked(run: HashedRun, lock: Lock, opts: ExecuteOptions, index: number, total: number) {
  const p = run.paths;
  await removeTempFiles(p); // temp files of a crashed writer (we hold the lock: nobody is writing)
  const backendInfo = await initBackend(run.config.backend);
  const env = await baseEnvironment(opts.paths.root);
  const manifest: RunManifest = {
    hash: run.hash,
    run_id: run.run_id,
    experiment: run.config.experiment,
    variant: run.variant,
    seed: run.seed,
    config: run.config,
    hash_inputs: run.hash_inputs,
    env: { ...env, tfjs: backendInfo.tfjs, backend: backendInfo.name, backend_details: backendInfo.details },
    created_at: new Date().toISOString(),
  };
  await writeManifest(p, manifest);
  faultPoint("run.manifest");
  const status: RunStatusRecord = {
    ...emptyStatus("running"),
    pid: Deno.pid,
    hostname: env.hostname,
    started_at: new Date().toISOString(),
    heartbeat_at: new Date().toISOString(),
    step: 0,
    files: await fileChecksums(p, STARTED_FILES),
  };
  await writeStatus(p, status);
  await appendAttempt(p, { event: "start", pid: Deno.pid, hostname: env.hostname, at: status.started_at! });
  onInterrupt(() => interrupted({ paths: p, lock, status, hostname: env.hostname }));
  publishRun({ paths: p, status, hostname: env.hostname });
  const sink = opts.progress?.(run, index, total);
  let lastBeat = Date.now();
  let beat: Promise<void> = Promise.resolve();
  try {
    const ds = await dataset(run, opts.paths);
    const outcome = await train({
      config: run.config,
      dataset: ds,
      dir: p.dir,
      resume: !opts.force,
      preempt: opts.preempt,
      metricsSink: liveMetricsSink(p),
      init: run.parent
        ? { dir: run.parent.paths.dir, model: run.parent.config.model, steps_before: stepsBehind(run.parent) }
        : undefined,
      progress: (pr: StepProgress) => {
        sink?.update(pr);
        status.step = pr.step;
        publishStep(pr.step);
        if (Date.now() - lastBeat > HEARTBEAT_S * 1000) {
          lastBeat = Date.now();
          status.heartbeat_at = new Date().toISOString();
          beat = beat.then(() => writeStatus(p, { ...status })).catch(() => {});
        }
      },
    });
    await beat; // a heartbeat still in flight must not land after the final status
    const diverged = outcome.summary.status === "completed"
      ? detectDivergence(outcome.metrics, { vocab: run.config.model.vocab_size })
      : null;
    if (diverged) outcome.summary = { ...outcome.summary, status: "diverged", failure: diverged };
    const sums = await writeResults(p, outcome.summary, outcome.metrics);
    const final: RunStatusRecord = {
      ...status,
      status: outcome.summary.status,
      step: outcome.summary.steps_done,
      heartbeat_at: new Date().toISOString(),
      finished_at: new Date().toISOString(),
      files: { ...status.files, ...sums },
    };
    await writeStatus(p, final);
    faultPoint("run.status");
    await appendAttempt(p, {
      event: "end",
      pid: Deno.pid,
      hostname: env.hostname,
      at: final.finished_at!,
      step: outcome.summary.steps_done,
      outcome: outcome.summary.status,
      detail: outcome.summary.failure?.reason ?? null,
    }).catch(() => {});
    sink?.done(describe(outcome.summary));
    return outcome.summary;
  } catch (e) {
    // An exception (disk full, a bug) interrupts the attempt: the entry keeps its verified checkpoints
    // and the next run of the same command resumes from them.
    const error = (e as Error)?.message ?? String(e);
    await beat;
    await writeStatus(p, { ...status, status: "interrupted", error, heartbeat_at: new Date().toISOString() })
      .catch(() => {});
    await appendAttempt(p, {
      event: "end",
      pid: Deno.pid,
      hostname: env.hostname,
      at: new Date().toISOString(),
      step: status.step ?? 0,
      outcome: "error",
      detail: error,
    }).catch(() => {});
    sink?.done(`error: ${error}`);
    throw e;
  } finally {
    onInterrupt(null);
    publishRun(null);
  }
}

function describe(s: RunSummary): string {
  if (s.status === "diverged") return `DIVERGED: ${s.failure?.reason}`;
  if (s.status === "failed") {
    return `FAILED at step ${s.failure?.step}: ${s.failure?.reason} (last good loss ${
      s.failure?.last_good_loss ?? "n/a"
    })`;
  }
  return `val_loss ${s.val_loss?.toFixed(4)}  val_ppl ${s.val_ppl?.toFixed(3)}  ${
    Math.round(s.tokens_per_sec)
  } tok/s  ${s.wall_s.toFixed(1)} s${s.resumed_from_step ? `  (resumed from step ${s.resumed_from_step})` : ""}`;
}

async function finishedRecord(run: HashedRun): Promise<RunRecord> {
  const r = await readRecord(run.paths);
  if (!r) throw new Error(`cache entry ${run.paths.dir} vanished`);
  return r;
}

/**
 * Trains what is missing and returns one outcome per planned run, in plan order.
 * Runs another process holds are skipped at first and waited for at the end.
 */
export async function executePlan(plan: Plan, opts: ExecuteOptions): Promise<RunOutcome[]> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const outcomes = new Map<string, RunOutcome>();
  const deferred: HashedRun[] = [];
  const total = plan.runs.length;
  // Parents first: other experiments' runs this plan starts from, then runs by their depth in init_from chains.
  const depth = (r: HashedRun): number => (r.parent ? 1 + depth(r.parent) : 0);
  const ordered = [...plan.dependencies, ...[...plan.runs].sort((a, b) => depth(a) - depth(b))];
  const todo = ordered.filter((r, i, a) => a.findIndex((x) => x.hash === r.hash) === i);

  const attempt = async (run: HashedRun, lock: Lock, index: number): Promise<void> => {
    try {
      if (!opts.force && await isFinished(run.paths)) {
        outcomes.set(run.hash, { run, action: "waited", record: await finishedRecord(run) });
        return;
      }
      const { problems } = await inspectEntry(run.paths);
      if (problems.length && !opts.force) {
        log(
          `${run.run_id}: cache entry ${run.paths.dir} failed verification (${problems.join("; ")}); ` +
            `retraining it from its last verified checkpoint`,
        );
      }
      if (run.parent) await checkParent(run);
      if (opts.force) await removeCheckpoints(run.paths);
      const summary = await trainLocked(run, lock, opts, index, total);
      const action: RunAction = summary.status === "failed" || summary.status === "diverged"
        ? summary.status
        : summary.resumed_from_step !== null
        ? "resumed"
        : "trained";
      outcomes.set(run.hash, { run, action, record: await finishedRecord(run) });
    } finally {
      lock.release();
    }
  };

  for (const [i, run] of todo.entries()) {
    if (!opts.force && await isFinished(run.paths)) {
      outcomes.set(run.hash, { run, action: "cached", record: await finishedRecord(run) });
      continue;
    }
    if (run.parent && deferred.some((d) => d.hash === run.parent!.hash)) {
      deferred.push(run); // its parent is being trained by another process: wait for both, in order
      continue;
    }
    await Deno.mkdir(run.paths.dir, { recursive: true });
    const got = tryLock(run.paths.lock);
    if (!("release" in got)) {
      const who = got.heldBy ? `pid ${got.heldBy.pid} on ${got.heldBy.hostname}` : "another process";
      log(`${run.run_id}: ${who} is training it; moving on and coming back to it`);
      deferred.push(run);
      continue;
    }
    await attempt(run, got, i);
  }
  for (const run of deferred) {
    log(`${run.run_id}: waiting for the other process to finish it`);
    const lock = await waitLock(run.paths.lock, { timeoutMs: opts.waitTimeoutMs });
    if (!lock) throw new Error(`${run.run_id}: gave up waiting for the process training ${run.paths.dir}`);
    await attempt(run, lock, todo.indexOf(run));
  }
  return plan.runs.map((r) => outcomes.get(r.hash)!);
}

/** Throws, naming the parent, unless the run's parent finished successfully. */
async function checkParent(run: HashedRun): Promise<void> {
  const parent = run.parent!;
  const rec = await readRecord(parent.paths);
  if (rec?.summary?.status === "completed") return;
  const state = !rec
    ? "has not been trained"
    : rec.summary?.status === "failed"
    ? `failed at step ${rec.summary.failure?.step} (${rec.summary.failure?.reason})`
    : `is ${rec.status.status}`;
  throw new Error(
    `${run.run_id} starts from ${parent.config.experiment}/${parent.run_id} (run ${parent.hash.slice(0, 12)}), which ` +
      `${state}. Fix or retrain the parent (deno task exp ${parent.config.experiment}), then run again.`,
  );
}

/** Training steps behind a run's final weights: its own steps plus its ancestors' (TrainInit.steps_before). */
function stepsBehind(run: HashedRun): number {
  let n = 0;
  for (let r: HashedRun | null = run; r; r = r.parent) n += r.config.train.steps;
  return n;
}
