/**
 * The results database as the pipeline uses it: open it (rebuilding a missing or corrupt one from the run
 * cache, the source of truth, under a lock), ingest a plan's records, rebuild it, and list the cache's
 * runs with their live status. No printing beyond warnings on stderr: the API (lib/api/mod.ts) and the
 * CLI build on these.
 *
 * @module
 */
import { basename, dirname, relative } from "node:path";
import {
  type ExperimentRow,
  type IngestBatch,
  openStore,
  rebuildStore,
  type Store,
  StoreCorruptError,
} from "../store/mod.ts";
import { ingestBenchFiles } from "../store/bench.ts";
import { openReadOnly, type ReadOnlyDb } from "../store/readonly.ts";
import { countAttempts, entryPaths } from "./cache.ts";
import { verifyPool } from "./verify_pool.ts";
import { waitLock } from "./lock.ts";
import { listExperiments, loadExperiment, type Plan } from "./plan.ts";
import type { RunRecord } from "../core/records.ts";
import type { ProjectPaths } from "../util/paths.ts";
import { atomicWriteJson, exists, readJsonOrNull } from "../util/fs.ts";
import { faultPoint } from "../util/fault.ts";
import { syncTags } from "./tags.ts";

// The `runs` listing lives in runs.ts; importers keep using this module.
export { formatAge, type RunsRow, runsRows } from "./runs.ts";
import { listedNames } from "./runs.ts";

/**
 * How long a command waits for the results database while another process writes it: DuckDB allows
 * one writer per file, so concurrent runners queue here (default 10 min; FINELAB_DB_LOCK_TIMEOUT_S).
 */
export function dbLockTimeoutMs(): number {
  let v: string | undefined;
  try {
    v = Deno.env.get("FINELAB_DB_LOCK_TIMEOUT_S");
  } catch { /* no env permission: the default */ }
  const s = Number(v);
  return (v && Number.isFinite(s) && s >= 0 ? s : 600) * 1000;
}

const log = (m: string) => console.error(m);

/** Results folders whose rebuild lock this process holds (flock is per open file: the holder must not wait on it). */
const rebuildLocksHeld = new Map<string, number>();

/**
 * Runs `fn` holding the results folder's rebuild lock, so concurrent processes rebuild one at a time (and writers
 * wait, see {@link openResults}). Reentrant within a process.
 */
export async function withRebuildLock<T>(paths: ProjectPaths, fn: () => Promise<T>): Promise<T> {
  const key = paths.results;
  if (rebuildLocksHeld.has(key)) {
    rebuildLocksHeld.set(key, rebuildLocksHeld.get(key)! + 1);
    try {
      return await fn();
    } finally {
      rebuildLocksHeld.set(key, rebuildLocksHeld.get(key)! - 1);
    }
  }
  await Deno.mkdir(paths.results, { recursive: true });
  const lock = await waitLock(`${paths.results}/.db-rebuild.lock`, { pollMs: 200 });
  rebuildLocksHeld.set(key, 1);
  try {
    return await fn();
  } finally {
    rebuildLocksHeld.delete(key);
    lock!.release();
  }
}

/** What {@link rebuildFromCache} did. */
export interface RebuildReport {
  runs: number;
  metrics: number;
  /** Cache entries left out because they failed verification (dir and problems). */
  corrupt: { dir: string; problems: string[] }[];
}

/**
 * Recreates the database from the run cache (the source of truth): every verified entry, with its
 * live status (a dead `running` run is stored as interrupted). Corrupt entries are left out and
 * reported; the next `exp` retrains them.
 */
export async function rebuildFromCache(paths: ProjectPaths): Promise<RebuildReport> {
  await removeRebuildLeftovers(paths);
  const corrupt: RebuildReport["corrupt"] = [];
  const perExperiment = new Map<string, number>();
  let runs = 0;
  await rebuildStore(paths.db, {
    batches: cacheBatches(paths, (r) => {
      runs++;
      perExperiment.set(r.manifest.experiment, (perExperiment.get(r.manifest.experiment) ?? 0) + 1);
    }, corrupt),
    experiments: () => experimentRows(perExperiment, paths),
  }, { lockTimeoutMs: dbLockTimeoutMs() });
  // Benchmark results live as JSON files under results/bench/ (deno task bench): restore the bench table.
  const store = await openStore(paths.db, { lockTimeoutMs: dbLockTimeoutMs() });
  let metrics = 0;
  try {
    await ingestBenchFiles(store, `${paths.results}/bench`);
    await syncTags(store, paths);
    metrics = Number((await store.query("SELECT count(*) AS n FROM metrics")).rows[0].n);
  } finally {
    await store.close();
  }
  for (const c of corrupt) {
    log(
      `warning: left out cache entry ${c.dir}: ${c.problems.join("; ")}. ` +
        `Run its experiment again (deno task exp <id>) to retrain it.`,
    );
  }
  return { runs, metrics, corrupt };
}

/** Runs per batch of a rebuild: bounds memory (records of one batch) whatever the cache's size. */
const REBUILD_BATCH = 2000;

/**
 * The cache's verified entries in batches, each with its live status and its finished runs' metrics.jsonl
 * (checksums verified here, parsed by DuckDB). The next batch is read while the database ingests this one.
 */
async function* cacheBatches(
  paths: ProjectPaths,
  onRecord: (r: RunRecord) => void,
  corrupt: RebuildReport["corrupt"],
): AsyncGenerator<IngestBatch> {
  // Listed from the folder, and recorded for `runs` (lib/runner/runs.ts), which then need not list it again.
  const names = await listedNames(paths, { fresh: true });
  const pool = verifyPool(names.length);
  const load = async (from: number): Promise<IngestBatch> => {
    const batch = names.slice(from, from + REBUILD_BATCH);
    // Started from a timer: the consumer first hands the previous batch to DuckDB (the inline pool blocks).
    await new Promise((r) => setTimeout(r, 0));
    const states = await pool.verify(paths.cache, batch);
    const records: RunRecord[] = [];
    const metricFiles = new Map<string, string>();
    states.forEach((s, j) => {
      const p = entryPaths(paths.cache, batch[j]);
      if (s.problems.length) return corrupt.push({ dir: p.dir, problems: s.problems });
      if (!s.record) return;
      records.push(s.record);
      onRecord(s.record);
      if (s.metricsVerified) metricFiles.set(s.record.manifest.hash, p.metrics);
    });
    return { records, metricFiles };
  };
  try {
    let next = names.length ? load(0) : null;
    for (let i = 0; next; i += REBUILD_BATCH) {
      const cur = await next;
      next = i + REBUILD_BATCH < names.length ? load(i + REBUILD_BATCH) : null;
      next?.catch(() => {}); // awaited (and its error thrown) on the next turn
      yield cur;
    }
  } finally {
    pool.close();
  }
}

/** Removes half-built databases of rebuilds that were killed (call under the rebuild lock). */
async function removeRebuildLeftovers(paths: ProjectPaths): Promise<void> {
  const base = basename(paths.db);
  try {
    for await (const e of Deno.readDir(dirname(paths.db))) {
      if (e.isFile && e.name.startsWith(`${base}.rebuild-`) && /\.tmp(\.wal)?$/.test(e.name)) {
        await Deno.remove(`${dirname(paths.db)}/${e.name}`).catch(() => {});
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

async function cacheHasRuns(cache: string): Promise<boolean> {
  try {
    for await (const e of Deno.readDir(cache)) if (e.isDirectory && /^[0-9a-f]{64}$/.test(e.name)) return true;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return false;
}

/** Identity of the database file (a rebuild renames a new file over it, which changes it). */
async function fileId(path: string): Promise<string | null> {
  try {
    const st = await Deno.stat(path);
    return `${st.ino}:${st.mtime?.getTime()}:${st.size}`;
  } catch {
    return null;
  }
}

/** Rebuilds a corrupt database under the rebuild lock, unless another process replaced the file meanwhile. */
async function repair(paths: ProjectPaths, e: StoreCorruptError): Promise<void> {
  const seen = await fileId(paths.db);
  await withRebuildLock(paths, async () => {
    if ((await fileId(paths.db)) !== seen) return; // another process rebuilt it while we waited
    log(
      `${e.message.replace(/ The database is only an index.*$/, "")} Rebuilding it from ${paths.cache} ` +
        `(nothing is lost: the cache is the source of truth).`,
    );
    await rebuildFromCache(paths);
  });
}

/**
 * Opens the results database for writing. A missing database is first rebuilt from the cache (when
 * the cache holds runs, so no run of another experiment goes missing from it); a corrupt one is
 * rebuilt from the cache, with a message. Waits {@link dbLockTimeoutMs} for other writers.
 */
export async function openResults(paths: ProjectPaths): Promise<Store> {
  if (!(await exists(paths.db)) && (await cacheHasRuns(paths.cache))) {
    await withRebuildLock(paths, async () => {
      if (await exists(paths.db)) return;
      log(`no results database at ${paths.db}: building it from the run cache ${paths.cache}`);
      await rebuildFromCache(paths);
    });
  }
  // Opened under the rebuild lock: a rebuild in another process swaps its new file in before this opens it (it
  // closes the old file just before the rename: a write let in there would land in the replaced file and be lost).
  // Once open, this process holds DuckDB's lock, which a rebuild waits for before it starts.
  return await openOrRepair(
    paths,
    () => withRebuildLock(paths, () => openStore(paths.db, { lockTimeoutMs: dbLockTimeoutMs() })),
  );
}

/** Runs `open`; when it finds the database corrupt, repairs it (see `repair`) and opens once more. */
async function openOrRepair<T>(paths: ProjectPaths, open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (e) {
    if (!(e instanceof StoreCorruptError)) throw e;
    await repair(paths, e);
    return await open();
  }
}

/**
 * Opens the results folder read-only (lib/store/readonly.ts), first building a missing database (from the cache
 * when it has runs) or repairing a corrupt one; those are writes into the results folder only.
 */
export async function openForReading(paths: ProjectPaths): Promise<ReadOnlyDb> {
  const open = () => openReadOnly(paths.results, { db: paths.db, lockTimeoutMs: dbLockTimeoutMs() });
  if (!(await exists(paths.db))) {
    try {
      await (await openResults(paths)).close();
    } catch (e) {
      if (await cacheHasRuns(paths.cache)) throw e;
      throw new NoResultsError(`no results in ${paths.results} yet: run an experiment first (deno task exp <id>)`);
    }
  }
  return await openOrRepair(paths, open);
}

/** The results folder holds no database and no runs to build one from. */
export class NoResultsError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "NoResultsError";
  }
}

/**
 * Runs `fn` on the open results database; when the database turns out corrupt while `fn` reads or
 * writes it, rebuilds it from the cache and runs `fn` once more.
 */
export async function withResults<T>(paths: ProjectPaths, fn: (store: Store) => Promise<T>): Promise<T> {
  let store = await openResults(paths);
  try {
    return await fn(store);
  } catch (e) {
    if (!(e instanceof StoreCorruptError)) throw e;
    await store.close();
    await repair(paths, e);
    store = await openResults(paths);
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** The `experiments` row for a plan, with the plan's runs (what `current_runs` shows). */
export function experimentRow(plan: Plan, paths: ProjectPaths): ExperimentRow {
  return {
    id: plan.experiment.id,
    description: plan.experiment.description,
    module: relative(paths.root, plan.modulePath),
    n_runs: plan.runs.length,
    updated_at: new Date().toISOString(),
    plan: { scale: plan.scale, runs: plan.runs.map((r) => ({ hash: r.hash, run_id: r.run_id })) },
  };
}

/** Where the latest plan of each experiment is kept (part of the cache, so `db rebuild` restores it). */
function planFile(paths: ProjectPaths, id: string): string {
  return `${paths.cache}/plans/${id}.json`;
}

/**
 * Stores a plan's records: saves the plan (what `current_runs` shows; part of the cache, so `db rebuild`
 * restores it) and ingests the records into the open database.
 */
export async function ingestRecords(
  store: Store,
  records: RunRecord[],
  opts: { paths: ProjectPaths; experiment: ExperimentRow | null },
): Promise<void> {
  // The plan file (the experiment's current runs) is replaced only by a declared plan (experiment given).
  if (opts.experiment) await atomicWriteJson(planFile(opts.paths, opts.experiment.id), opts.experiment);
  faultPoint("exp.plan");
  // Each record with its attempt count (what `deno task runs` shows of a finished run, from the database).
  const counted = await Promise.all(
    records.map(async (r) => ({ ...r, attempts: await countAttempts(entryPaths(opts.paths.cache, r.manifest.hash)) })),
  );
  await store.ingest(counted, opts.experiment ? [opts.experiment] : []);
  await syncTags(store, opts.paths);
  faultPoint("exp.ingested");
}

/**
 * SQL of the per-variant summary of an experiment's current runs (also shown in the README), or of the given
 * run hashes (runs made with overrides).
 */
export function summarySql(experiment: string, metrics: string[], hashes?: string[]): string {
  const cols = metrics.map((m) => `avg(${m}) AS ${m}_mean, stddev_samp(${m}) AS ${m}_std`).join(",\n  ");
  const q = (s: string) => `'${s.replaceAll("'", "''")}'`;
  const from = hashes
    ? `runs\nWHERE hash IN (${hashes.map(q).join(", ")})`
    : `current_runs\nWHERE experiment = ${q(experiment)}`;
  return `SELECT variant, count(*) AS seeds,\n  ${cols}\nFROM ${from} AND status = 'completed'\n` +
    `GROUP BY variant ORDER BY ${metrics[metrics.length - 1]}_mean`;
}

async function experimentRows(runsOf: Map<string, number>, paths: ProjectPaths): Promise<ExperimentRow[]> {
  const ids = runsOf.keys();
  const known = new Set(await listExperiments(paths));
  const rows: ExperimentRow[] = [];
  for (const id of ids) {
    const saved = await readJsonOrNull<ExperimentRow>(planFile(paths, id));
    if (saved) {
      rows.push(saved);
      continue;
    }
    let description = "", module = "";
    if (known.has(id)) {
      try {
        const { exp, modulePath } = await loadExperiment(id, paths);
        description = exp.description;
        module = relative(paths.root, modulePath);
      } catch { /* module broken: keep the runs anyway */ }
    }
    rows.push({ id, description, module, n_runs: runsOf.get(id) ?? 0 });
  }
  return rows;
}
