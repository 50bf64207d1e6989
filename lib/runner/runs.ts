/**
 * The rows of `runs`: every cache entry with its live status (corrupt ones included), its attempts, tags
 * and a note on what to do. results.ts re-exports these.
 *
 * Two ways to list (see {@link runsRows}): verified, reading and checking every entry of the cache (`--verify`;
 * seconds per 10k runs), or indexed (the default): a finished run (completed, failed, diverged) comes from the
 * database, which holds what its entry held, verified, when it was ingested; every other entry (not in the
 * database, or queued, running, interrupted there) is read and verified from the cache as before. The names of
 * the cache's entries come from a listing kept in `results/.cache-listing`, reused while the cache folder's
 * stamp (inode, mtime, ctime, link count, size: an entry added or removed changes it) is unchanged.
 *
 * @module
 */
import type { DuckDBConnection, DuckDBResultReader } from "@duckdb/node-api";
import { countAttempts, entryNames, entryPaths, inspectEntry, liveStatus, mapPool } from "./cache.ts";
import type { ProjectPaths } from "../util/paths.ts";
import { atomicWrite, readJsonOrNull } from "../util/fs.ts";
import { tagsByHash } from "./tags.ts";

/** "42s", "3m05s", "2h07m" (for heartbeat ages). */
export function formatAge(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** One line of `runs`. */
export interface RunsRow {
  experiment: string | null;
  run_id: string | null;
  hash: string;
  /** queued, running, completed, failed, interrupted (a dead process's run) or corrupt. */
  status: string;
  step: number | null;
  steps: number | null;
  val_ppl: number | null;
  /** Age of the last heartbeat of a running or interrupted run. */
  heartbeat: string | null;
  /** Training attempts started (attempts.jsonl). */
  attempts: number;
  /** The run's tags (`exp --tag`), comma-separated; null when it has none. */
  tags: string | null;
  /** Why it failed, was interrupted or is corrupt, and what to do. */
  note: string | null;
}

/** Options of {@link runsRows}. */
export interface RunsOptions {
  /** Only this experiment's entries. */
  experiment?: string;
  /**
   * Read and verify every entry from the cache (checksums of every file), finished ones included: what finds an
   * entry damaged after it was stored. Default: finished runs as the database holds them.
   */
  verify?: boolean;
}

/** Statuses that never change on their own: a run in one of these is listed from the database. */
const FINAL = new Set(["completed", "failed", "diverged"]);

/** The rows of `runs`: every cache entry with its live status, corrupt ones included (sorted by hash). */
export async function runsRows(paths: ProjectPaths, opts: RunsOptions = {}): Promise<RunsRow[]> {
  const { experiment } = opts;
  const tags = await tagsByHash(paths);
  const tagsOf = (name: string) => tags.get(name)?.join(",") ?? null;
  const indexed = opts.verify ? null : await indexedListing(paths, experiment);
  const names = indexed?.names ?? await entryNames(paths.cache);
  const out: (RunsRow | null)[] = new Array(names.length).fill(null);
  const unread: number[] = [];
  names.forEach((name, i) => {
    const s = indexed?.stored.get(name);
    if (s && FINAL.has(s.status)) out[i] = storedRow(s, name, tagsOf(name));
    else unread.push(i);
  });
  // Every other entry is verified (checksums), a few at a time; metrics.jsonl is hashed but not parsed.
  await mapPool(unread, 16, async (i) => {
    out[i] = await runsRow(paths, names[i], experiment, tagsOf(names[i]));
  });
  // Attempts of runs ingested before the database counted them: read from their entries.
  const uncounted = names.flatMap((_, i) => (out[i]?.attempts === -1 ? [i] : []));
  await mapPool(uncounted, 16, async (i) => {
    out[i]!.attempts = await countAttempts(entryPaths(paths.cache, names[i]));
  });
  return out.filter((r): r is RunsRow => r !== null);
}

/** The columns of `runs` a listed row needs. */
interface StoredRun {
  experiment: string;
  run_id: string;
  status: string;
  steps_done: number | null;
  train_steps: number | null;
  val_ppl: number | null;
  failure_reason: string | null;
  attempts: number | null;
}

function storedRow(s: StoredRun, name: string, tags: string | null): RunsRow {
  return {
    experiment: s.experiment,
    run_id: s.run_id,
    hash: name.slice(0, 12),
    status: s.status,
    step: s.steps_done,
    steps: s.train_steps,
    val_ppl: s.val_ppl,
    heartbeat: null,
    attempts: s.attempts ?? -1, // -1: counted from the entry by runsRows
    tags,
    note: s.status === "failed" || s.status === "diverged" ? s.failure_reason : null,
  };
}

const STORED_COLUMNS = "hash, experiment, run_id, status, steps_done, train_steps, val_ppl, failure_reason, attempts";

/** The result's columns as JS values (`n` empty ones for no rows, where DuckDB returns none). */
function columnsOf(reader: DuckDBResultReader, n: number): unknown[][] {
  const cols = reader.getColumnsJS() as unknown[][];
  return cols.length ? cols : Array.from({ length: n }, () => []);
}

function storedRuns(rows: unknown[][]): Map<string, StoredRun> {
  const out = new Map<string, StoredRun>();
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  const [hash, experiment, runId, status, stepsDone, trainSteps, valPpl, reason, attempts] = rows;
  for (let i = 0; i < hash.length; i++) {
    out.set(String(hash[i]), {
      experiment: String(experiment[i]),
      run_id: String(runId[i]),
      status: String(status[i]),
      steps_done: num(stepsDone[i]),
      train_steps: num(trainSteps[i]),
      val_ppl: num(valPpl[i]),
      failure_reason: reason[i] === null ? null : String(reason[i]),
      attempts: num(attempts[i]),
    });
  }
  return out;
}

/**
 * The entries to list (sorted names; only `experiment`'s and those the database does not have, when given) and the
 * database's runs among them, read-only. Null when there is no database, another process holds it for more than a
 * second, or it cannot be read: then every entry is read from the cache.
 */
async function indexedListing(
  paths: ProjectPaths,
  experiment: string | undefined,
): Promise<{ names: string[]; stored: Map<string, StoredRun> } | null> {
  try {
    await Deno.stat(paths.db);
  } catch {
    return null;
  }
  const { createInstance } = await import("../store/pool.ts");
  const { checkSchemaVersion } = await import("../store/ingest.ts");
  const { literal } = await import("../store/schema.ts");
  const listing = await listing_(paths);
  let inst;
  try {
    inst = await createInstance(paths.db, true, 1000);
  } catch {
    return null;
  }
  let conn: DuckDBConnection | null = null;
  try {
    conn = await inst.connect();
    await checkSchemaVersion(conn, paths.db);
    const only = experiment === undefined ? "" : ` AND r.experiment = ${literal(experiment)}`;
    if (listing.file) {
      // The recorded listing read by DuckDB: only the rows to show cross into JS, and the names it lacks.
      const names = `(SELECT name FROM read_csv(${literal(listing.file)}, skip = 1, header = false, ` +
        `auto_detect = false, delim = '\t', quote = '', escape = '', columns = {name: 'VARCHAR'}))`;
      const rows = await conn.runAndReadAll(
        `SELECT ${STORED_COLUMNS} FROM runs r WHERE r.hash IN ${names}${only}`,
      );
      const stored = storedRuns(columnsOf(rows, 9));
      const unknown = await conn.runAndReadAll(`SELECT name FROM ${names} l WHERE name NOT IN (SELECT hash FROM runs)`);
      const extra = columnsOf(unknown, 1)[0].map(String);
      return { names: [...stored.keys(), ...extra].sort(), stored };
    }
    const rows = await conn.runAndReadAll(`SELECT ${STORED_COLUMNS} FROM runs r`);
    const stored = storedRuns(columnsOf(rows, 9));
    // An entry's experiment never changes (it is part of its manifest): another experiment's stored run is left out.
    const names = listing.names!.filter((n) => !experiment || (stored.get(n)?.experiment ?? experiment) === experiment);
    return { names, stored };
  } catch {
    return null; // an older schema (no attempts column), a damaged file: the cache has it all
  } finally {
    conn?.closeSync();
    inst.closeSync();
  }
}

/** Stamp of the cache folder's listing: adding or removing an entry changes it. Null when there is no cache. */
function listingStamp(cache: string): string | null {
  try {
    const st = Deno.statSync(cache);
    return [st.ino, st.mtime?.getTime(), st.ctime?.getTime(), st.nlink, st.size].join(":");
  } catch {
    return null;
  }
}

/**
 * The cache's entry names ({@link entryNames}), by way of the recorded listing (see {@link listing_}); `fresh`:
 * listed from the folder and recorded again in any case (what `db rebuild` does, so that `runs` after it need not).
 */
export async function listedNames(paths: ProjectPaths, opts: { fresh?: boolean } = {}): Promise<string[]> {
  const l = await listing_(paths, opts.fresh ?? false);
  return l.names ?? Deno.readTextFileSync(l.file!).split("\n").slice(1).filter((n) => n.length > 0);
}

/**
 * The cache's entry names: `results/.cache-listing` (the cache folder's stamp, then one name a line) while the
 * stamp is the one recorded there (`file`, names left to the reader); otherwise listed (`names`) and recorded
 * again when the results folder is writable (then `file` too).
 */
async function listing_(paths: ProjectPaths, fresh = false): Promise<{ file: string | null; names: string[] | null }> {
  const file = `${paths.results}/.cache-listing`;
  const before = listingStamp(paths.cache);
  if (before === null) return { file: null, names: [] };
  if (!fresh) {
    try {
      const f = Deno.openSync(file);
      try {
        const head = new Uint8Array(before.length + 1);
        if (f.readSync(head) === head.length && new TextDecoder().decode(head) === `${before}\n`) {
          return { file, names: null };
        }
      } finally {
        f.close();
      }
    } catch { /* none yet */ }
  }
  const names = await entryNames(paths.cache);
  // Recorded only when nothing was added or removed while listing.
  if (listingStamp(paths.cache) === before) {
    try {
      await atomicWrite(file, `${before}\n${names.join("\n")}\n`);
      return { file, names };
    } catch { /* a read-only results folder: nothing recorded */ }
  }
  return { file: null, names };
}

async function runsRow(
  paths: ProjectPaths,
  name: string,
  experiment: string | undefined,
  tags: string | null,
): Promise<RunsRow | null> {
  const p = entryPaths(paths.cache, name);
  if (experiment) {
    // Another experiment's entry (or one whose manifest does not parse, which has no experiment): not listed.
    const m = await readJsonOrNull<{ experiment?: string }>(p.manifest).catch(() => null);
    if (m?.experiment !== experiment) return null;
  }
  const { record: r, problems } = await inspectEntry(p, { rawMetrics: true });
  if (problems.length) {
    const m = await readJsonOrNull<{ experiment?: string; run_id?: string }>(p.manifest).catch(() => null);
    if (experiment && m?.experiment !== experiment) return null;
    return {
      experiment: m?.experiment ?? null,
      run_id: m?.run_id ?? null,
      hash: name.slice(0, 12),
      status: "corrupt",
      step: null,
      steps: null,
      val_ppl: null,
      heartbeat: null,
      attempts: await countAttempts(p),
      tags,
      note: `${problems.join("; ")}; the next exp run retrains it`,
    };
  }
  if (!r || (experiment && r.manifest.experiment !== experiment)) return null;
  const attempts = await countAttempts(p);
  const status = liveStatus(r.status, p);
  const beat = r.status.heartbeat_at ? (Date.now() - Date.parse(r.status.heartbeat_at)) / 1000 : NaN;
  let note: string | null = null;
  if (status === "failed" || status === "diverged") note = r.summary?.failure?.reason ?? null;
  else if (status === "interrupted") {
    note = `${r.status.error ? `error: ${r.status.error}; ` : ""}process ${r.status.pid ?? "?"} on ` +
      `${r.status.hostname ?? "?"} is gone; \`deno task exp ${r.manifest.experiment}\` resumes it`;
  } else if (status === "running") note = `pid ${r.status.pid} on ${r.status.hostname}`;
  return {
    experiment: r.manifest.experiment,
    run_id: r.manifest.run_id,
    hash: name.slice(0, 12),
    status,
    step: r.summary?.steps_done ?? r.status.step,
    steps: r.manifest.config.train.steps,
    val_ppl: r.summary?.val_ppl ?? null,
    heartbeat: status === "running" || status === "interrupted" ? `${formatAge(beat)} ago` : null,
    attempts,
    tags,
    note,
  };
}
