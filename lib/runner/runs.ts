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
 * {@link runsListing} orders newest first and cuts at a limit: the database's part (names joined in DuckDB, counts
 * by status, the newest `limit` rows) is all that crosses into JS, whatever the number of runs.
 *
 * @module
 */
import type { DuckDBConnection, DuckDBResultReader } from "@duckdb/node-api";
import { countAttempts, entryNames, entryPaths, inspectEntry, liveStatus, mapPool } from "./cache.ts";
import type { ProjectPaths } from "../util/paths.ts";
import { atomicWrite, readJsonOrNull } from "../util/fs.ts";
import { tagsByHash } from "./tags.ts";
import { literal } from "../store/schema.ts";

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

/** Options of {@link runsRows} and {@link runsListing}. */
export interface RunsOptions {
  /** Only this experiment's entries. */
  experiment?: string;
  /**
   * Read and verify every entry from the cache (checksums of every file), finished ones included: what finds an
   * entry damaged after it was stored. Default: finished runs as the database holds them.
   */
  verify?: boolean;
}

/** Options of {@link runsListing}. */
export interface ListingOptions extends RunsOptions {
  /** At most this many rows, the newest (default: every row). */
  limit?: number;
}

/** What {@link runsListing} found. */
export interface RunsListing {
  /** Newest first (see {@link runsListing}), at most `limit`. */
  rows: RunsRow[];
  /** The entries listed before the limit. */
  total: number;
  /** The listed entries by status (before the limit). */
  counts: Record<string, number>;
}

/** Statuses that never change on their own: a run in one of these is listed from the database. */
const FINAL_SQL = "('completed', 'failed', 'diverged')";

/** A row with its entry's name and time: epoch ms of its finish, last heartbeat, start or plan; null if corrupt. */
interface Timed {
  row: RunsRow;
  name: string;
  at: number | null;
}

/** Newest first; entries without a time (corrupt ones) before all others; then by name. */
function newestFirst(a: Timed, b: Timed): number {
  if (a.at !== b.at) return a.at === null ? -1 : b.at === null ? 1 : b.at - a.at;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** The time of an entry's row ({@link Timed}) from its ISO timestamps, the first one set. */
function timeOf(...isos: (string | null | undefined)[]): number | null {
  const iso = isos.find((x) => x);
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(t) ? t : null;
}

/** The rows of `runs`: every cache entry with its live status, corrupt ones included (sorted by hash). */
export async function runsRows(paths: ProjectPaths, opts: RunsOptions = {}): Promise<RunsRow[]> {
  const { timed } = await collect(paths, { ...opts, limit: Infinity });
  return timed.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((t) => t.row);
}

/**
 * The rows of `runs`, newest first (by finish, else last heartbeat, start or plan time; corrupt entries, which
 * have none, first), at most `limit`, with the number of entries and their statuses. Only the rows shown cross
 * from the database into JS: a first page of a 100k-run cache costs what the entries not finished there cost.
 */
export async function runsListing(paths: ProjectPaths, opts: ListingOptions = {}): Promise<RunsListing> {
  const limit = opts.limit ?? Infinity;
  if (!(limit >= 0)) throw new RangeError(`limit ${limit}: expected a number >= 0`);
  const { timed, total, counts } = await collect(paths, { ...opts, limit });
  return { rows: timed.map((t) => t.row), total, counts };
}

/** The newest `limit` of the entries read from the cache and the database's, newest first, with counts over all. */
async function collect(
  paths: ProjectPaths,
  opts: ListingOptions & { limit: number },
): Promise<{ timed: Timed[]; total: number; counts: Record<string, number> }> {
  const { experiment } = opts;
  const tags = await tagsByHash(paths);
  const tagsOf = (name: string) => tags.get(name)?.join(",") ?? null;
  const indexed = opts.verify ? null : await indexedListing(paths, { experiment, limit: opts.limit, tagsOf });
  const names = indexed?.unread ?? await entryNames(paths.cache);
  // Every other entry is verified (checksums), a few at a time; metrics.jsonl is hashed but not parsed.
  const read = (await mapPool(names, 16, (name) => runsRow(paths, name, experiment, tagsOf(name))))
    .filter((r): r is Timed => r !== null);
  const counts: Record<string, number> = { ...indexed?.counts };
  for (const t of read) counts[t.row.status] = (counts[t.row.status] ?? 0) + 1;
  // The database's rows come newest first: merged with the entries read here, newest first too.
  const timed = merge(read.sort(newestFirst), indexed?.stored ?? [], opts.limit);
  // Attempts of runs ingested before the database counted them: read from their entries.
  await mapPool(timed.filter((t) => t.row.attempts === -1), 16, async (t) => {
    t.row.attempts = await countAttempts(entryPaths(paths.cache, t.name));
  });
  return { timed, total: read.length + (indexed?.total ?? 0), counts };
}

/** The first `limit` of two lists sorted by {@link newestFirst}, in that order. */
function merge(a: Timed[], b: Timed[], limit: number): Timed[] {
  const out: Timed[] = [];
  let i = 0, j = 0;
  while (out.length < limit && (i < a.length || j < b.length)) {
    out.push(j >= b.length || (i < a.length && newestFirst(a[i], b[j]) <= 0) ? a[i++] : b[j++]);
  }
  return out;
}

/** The columns of `runs` a listed row needs. */
const STORED_COLUMNS = "r.hash, r.experiment, r.run_id, r.status, r.steps_done, r.train_steps, r.val_ppl, " +
  "r.failure_reason, r.attempts, epoch_ms(coalesce(r.finished_at, r.started_at, r.created_at)) AS sort_at";

/** The result's columns as JS values (`n` empty ones for no rows, where DuckDB returns none). */
function columnsOf(reader: DuckDBResultReader, n: number): unknown[][] {
  const cols = reader.getColumnsJS() as unknown[][];
  return cols.length ? cols : Array.from({ length: n }, () => []);
}

function storedRows(cols: unknown[][], tagsOf: (name: string) => string | null): Timed[] {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  const [hash, experiment, runId, status, stepsDone, trainSteps, valPpl, reason, attempts, at] = cols;
  return hash.map((h, i) => {
    const name = String(h), s = String(status[i]);
    const row: RunsRow = {
      experiment: String(experiment[i]),
      run_id: String(runId[i]),
      hash: name.slice(0, 12),
      status: s,
      step: num(stepsDone[i]),
      steps: num(trainSteps[i]),
      val_ppl: num(valPpl[i]),
      heartbeat: null,
      attempts: num(attempts[i]) ?? -1, // -1: counted from the entry by collect
      tags: tagsOf(name),
      note: s === "failed" || s === "diverged" ? (reason[i] === null ? null : String(reason[i])) : null,
    };
    return { row, name, at: num(at[i]) };
  });
}

/**
 * The database's part of a listing, read-only: its finished runs among the cache's entries (only `experiment`'s,
 * when given): their number by status and the newest `limit` of them; and the entries to read from the cache
 * (those it does not hold as finished). Null when there is no usable database (see {@link withListing}).
 */
function indexedListing(
  paths: ProjectPaths,
  o: { experiment: string | undefined; limit: number; tagsOf: (name: string) => string | null },
): Promise<{ unread: string[]; stored: Timed[]; total: number; counts: Record<string, number> } | null> {
  return withListing(paths, o.experiment, async ({ conn, from, unread }) => {
    const byStatus = await conn.runAndReadAll(`SELECT r.status, count(*)::INTEGER AS n ${from} GROUP BY r.status`);
    const limit = Number.isFinite(o.limit) ? ` LIMIT ${Math.floor(o.limit)}` : "";
    const rows = await conn.runAndReadAll(
      `SELECT ${STORED_COLUMNS} ${from} ORDER BY sort_at DESC NULLS FIRST, r.hash${limit}`,
    );
    const counts: Record<string, number> = {};
    const [st, n] = columnsOf(byStatus, 2);
    st.forEach((s, i) => counts[String(s)] = Number(n[i]));
    return {
      unread,
      stored: storedRows(columnsOf(rows, 10), o.tagsOf),
      total: Object.values(counts).reduce((a, b) => a + b, 0),
      counts,
    };
  });
}

/** What {@link withListing} hands its callback: a read-only connection with the cache's names in `temp.listed`. */
interface OpenListing {
  conn: DuckDBConnection;
  /** `FROM runs r ... WHERE ...`: the database's finished runs among the listed entries (only the experiment's). */
  from: string;
  /** The entries to read from the cache: those the database does not hold as finished. */
  unread: string[];
}

/**
 * Runs `fn` on the database's part of a listing of the cache (only `experiment`'s entries, when given). Null when
 * there is no database, another process holds it for more than a second, it cannot be read, or `fn` fails: then
 * every entry is read from the cache.
 */
async function withListing<T>(
  paths: ProjectPaths,
  experiment: string | undefined,
  fn: (l: OpenListing) => Promise<T>,
): Promise<T | null> {
  try {
    await Deno.stat(paths.db);
  } catch {
    return null;
  }
  const { createInstance } = await import("../store/pool.ts");
  const { checkSchemaVersion } = await import("../store/ingest.ts");
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
    // The cache's names as a temporary table: the recorded listing read by DuckDB, or appended.
    if (listing.file) {
      await conn.run(`CREATE TEMP TABLE listed AS ${listingSelect(listing.file)}`);
    } else {
      await conn.run(`CREATE TEMP TABLE listed (name VARCHAR)`);
      const app = await conn.createAppender("listed", "main", "temp");
      for (const n of listing.names!) {
        app.appendVarchar(n);
        app.endRow();
      }
      app.closeSync();
    }
    const only = experiment === undefined ? "" : ` AND r.experiment = ${literal(experiment)}`;
    // An entry's experiment never changes (it is part of its manifest): another experiment's stored run is left out.
    const unread = await conn.runAndReadAll(
      `SELECT l.name FROM temp.listed l LEFT JOIN runs r ON r.hash = l.name ` +
        `WHERE r.hash IS NULL OR (coalesce(r.status, '') NOT IN ${FINAL_SQL}${only})`,
    );
    const from = `FROM runs r JOIN temp.listed l ON r.hash = l.name WHERE r.status IN ${FINAL_SQL}${only}`;
    return await fn({ conn, from, unread: columnsOf(unread, 1)[0].map(String) });
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
 * The cache's entry names for a query ({@link listing_}): `sql`, a subquery of one column `name` over the recorded
 * listing, when it is recorded; else `names`.
 */
export async function listedSource(paths: ProjectPaths): Promise<{ sql: string | null; names: string[] | null }> {
  const l = await listing_(paths);
  return l.file ? { sql: `(${listingSelect(l.file)})`, names: null } : { sql: null, names: l.names };
}

/** `SELECT name FROM` the recorded listing `file` (its first line, the stamp, skipped). */
function listingSelect(file: string): string {
  return `SELECT name FROM read_csv(${literal(file)}, skip = 1, header = false, auto_detect = false, ` +
    `delim = '\t', quote = '', escape = '', columns = {name: 'VARCHAR'})`;
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

/** The row of the cache entry `name`, read and verified; null when it is another experiment's. */
async function runsRow(
  paths: ProjectPaths,
  name: string,
  experiment: string | undefined,
  tags: string | null,
): Promise<Timed | null> {
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
    const row: RunsRow = {
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
    return { row, name, at: null };
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
  const row: RunsRow = {
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
  const st = r.status;
  return { row, name, at: timeOf(st.finished_at, st.heartbeat_at, st.started_at, r.manifest.created_at) };
}
