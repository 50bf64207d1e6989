/**
 * The results store: a DuckDB file (`results/results.duckdb`) holding every run of the cache
 * (`results/cache/<hash>/`) in queryable form. The cache is the source of truth; the store is a
 * derived index that `rebuild` recreates from it at any time. Schema: lib/store/README.md and schema.ts.
 *
 * - One DuckDB instance per database file per process: every {@link openStore} of the same path shares it
 *   (two instances on one file in one process do not see each other's writes).
 * - All operations of a process on one file run one at a time, in call order.
 * - {@link Store.ingest} replaces the rows of the given run hashes in one transaction, with the Appender.
 * - {@link Store.rebuild} / {@link rebuildStore} build a new file beside the old one and rename it over.
 * - A file locked by another process is retried with backoff for `lockTimeoutMs` (default 30 s).
 *
 * ```ts
 * const store = await openStore("results/results.duckdb");
 * await store.ingest(records, [{ id: "ffn_sweep", description: "...", module: "experiments/ffn_sweep.ts", n_runs: 6 }]);
 * const res = await store.query("SELECT variant, val_ppl_mean FROM variant_stats");
 * console.log(formatResult(res, "table"));
 * await store.close();
 * ```
 *
 * @module
 */
import { type DuckDBAppender, type DuckDBConnection, DuckDBInstance, DuckDBTimestampValue } from "@duckdb/node-api";
import { dirname, resolve } from "node:path";
import type { RunRecord } from "../core/records.ts";
import {
  flatConfigOf,
  type FlatValue,
  ident,
  literal,
  mergeType,
  RUN_COLUMNS,
  SCHEMA_VERSION,
  schemaDdl,
} from "./schema.ts";
import { type QueryResult, toQueryResult } from "./result.ts";
import { faultPoint } from "../util/fault.ts";

export type { JsonValue, QueryColumn, QueryResult } from "./result.ts";
export { formatFloat, type FormatOptions, formatResult, OUTPUT_FORMATS, type OutputFormat } from "./format.ts";
export { RUN_COLUMNS, SCHEMA_VERSION } from "./schema.ts";

/** One row of the `experiments` table. */
export interface ExperimentRow {
  /** Experiment id (the name used in `deno task exp <id>`). */
  id: string;
  description: string;
  /** Path of the experiment module, relative to the repo root. */
  module: string;
  /** Runs the experiment plans (variants × seeds). */
  n_runs: number;
  /** ISO time of the last change; defaults to the time of the ingest. */
  updated_at?: string | null;
  /**
   * The runs of the experiment's latest plan. When given, they replace the experiment's rows of
   * `experiment_runs`, which the `current_runs` view joins (older runs of the experiment stay in `runs`).
   */
  plan?: { scale: string; runs: { hash: string; run_id: string }[] } | null;
}

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** Open without write access (other read-only processes may share the file). Default false. */
  readOnly?: boolean;
  /** How long to keep retrying while another process holds the file's lock, in ms. Default 30000. */
  lockTimeoutMs?: number;
}

/** A value bound to a `$name` parameter of {@link Store.query}. */
export type QueryParam = string | number | boolean | null;

/** An open results database. All methods reject once {@link Store.close} was called. */
export interface Store {
  /** Absolute path of the database file. */
  readonly path: string;
  /** Whether this handle was opened read-only. */
  readonly readOnly: boolean;
  /**
   * Writes the given runs (and experiments), replacing any rows of the same run hashes / experiment ids.
   * All in one transaction: on error nothing is changed. New config keys add columns to `runs`.
   */
  ingest(records: RunRecord[], experiments?: ExperimentRow[]): Promise<void>;
  /** Replaces the whole database by one built from exactly these records (built aside, then renamed over). */
  rebuild(records: RunRecord[], experiments: ExperimentRow[]): Promise<void>;
  /** Runs SQL (several statements allowed; the last one's result is returned). `$name` parameters bind `params`. */
  query(sql: string, params?: Record<string, QueryParam>): Promise<QueryResult>;
  /** Releases this handle; the file is closed when the process's last handle on it closes. */
  close(): Promise<void>;
}

/** The database file is locked by another process and stayed locked for the whole timeout. */
export class StoreLockedError extends Error {
  /** The holder as DuckDB names it, e.g. `/usr/bin/deno (PID 1234)`, when known. */
  holder: string | null;
  constructor(message: string, holder: string | null) {
    super(message);
    this.name = "StoreLockedError";
    this.holder = holder;
  }
}

/** The database file is not a readable DuckDB database (corrupt, truncated, other format or version). */
export class StoreCorruptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreCorruptError";
  }
}

const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
const REBUILD_HINT =
  "The database is only an index of results/cache/: `deno task db rebuild` recreates it from the cache.";

// ---------------------------------------------------------------------------------------------
// Opening, locking, the per-process registry
// ---------------------------------------------------------------------------------------------

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const CORRUPT =
  /not a valid DuckDB database|corrupt|checksum|version number|replaying WAL|Could not read enough bytes/i;

/** `e` as a {@link StoreCorruptError} when DuckDB's message says the file is damaged; otherwise `e` itself. */
function asCorrupt(e: unknown, path: string): unknown {
  const msg = messageOf(e);
  if (e instanceof StoreCorruptError || !CORRUPT.test(msg)) return e;
  return new StoreCorruptError(`cannot read results database ${path}: ${msg.split("\n")[0]}. ${REBUILD_HINT}`);
}

/** Opens a DuckDB instance, retrying while another process holds the lock; maps errors to clear ones. */
async function createInstance(path: string, readOnly: boolean, lockTimeoutMs: number): Promise<DuckDBInstance> {
  const start = Date.now();
  let delay = 50;
  for (;;) {
    try {
      return await DuckDBInstance.create(path, readOnly ? { access_mode: "READ_ONLY" } : {});
    } catch (e) {
      const msg = messageOf(e);
      if (/Could not set lock on file/i.test(msg)) {
        const waited = Date.now() - start;
        if (waited < lockTimeoutMs) {
          await sleep(Math.min(delay, lockTimeoutMs - waited)); // retry until the timeout has really passed
          delay = Math.min(delay * 2, 1000);
          continue;
        }
        const m = /Conflicting lock is held in (.*?) \(PID (\d+)\)/.exec(msg);
        const holder = m ? `${m[1]} (PID ${m[2]})` : null;
        throw new StoreLockedError(
          `results database ${path} is locked by another process` +
            `${holder ? `: ${holder}` : ""}; gave up after ${(waited / 1000).toFixed(1)} s. ` +
            `Wait for that process to finish (or stop it), then retry. DuckDB: ${msg.split("\n")[0]}`,
          holder,
        );
      }
      if (CORRUPT.test(msg)) throw asCorrupt(e, path);
      if (readOnly && /database does not exist/i.test(msg)) {
        throw new Error(
          `no results database at ${path} yet: run an experiment first, or \`deno task db rebuild\` to build it from the cache`,
        );
      }
      throw e;
    }
  }
}

interface Entry {
  path: string;
  readOnly: boolean;
  lockTimeoutMs: number;
  instance: DuckDBInstance | null;
  conn: DuckDBConnection | null;
  refs: number;
  /** Tail of the operation queue: operations on one file run one at a time. */
  tail: Promise<unknown>;
  /** Set once the last handle closed; resolves when the file is closed. */
  closing: Promise<void> | null;
  /** This entry's registry slot. */
  slot: Slot;
}

interface Slot {
  pending: Promise<Entry>;
}

/** Resolved path -> the open (or opening) entry of this process. */
const registry = new Map<string, Slot>();

/** Runs `fn` after every earlier operation on the same file. */
function exclusive<T>(entry: Entry, fn: () => Promise<T>): Promise<T> {
  const run = entry.tail.then(fn, fn);
  entry.tail = run.catch(() => {});
  return run;
}

async function connectEntry(entry: Entry): Promise<void> {
  const instance = await createInstance(entry.path, entry.readOnly, entry.lockTimeoutMs);
  let conn: DuckDBConnection | null = null;
  try {
    conn = await instance.connect();
    if (entry.readOnly) await checkSchemaVersion(conn, entry.path);
    else await ensureSchema(conn, entry.path);
  } catch (e) {
    conn?.closeSync();
    instance.closeSync();
    throw asCorrupt(e, entry.path);
  }
  entry.instance = instance;
  entry.conn = conn;
}

function disconnectEntry(entry: Entry): void {
  entry.conn?.closeSync();
  entry.instance?.closeSync();
  entry.conn = null;
  entry.instance = null;
}

async function openEntry(path: string, opts: OpenStoreOptions, slot: Slot): Promise<Entry> {
  const entry: Entry = {
    path,
    readOnly: opts.readOnly ?? false,
    lockTimeoutMs: opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
    instance: null,
    conn: null,
    refs: 0,
    tail: Promise.resolve(),
    closing: null,
    slot,
  };
  if (!entry.readOnly) await Deno.mkdir(dirname(path), { recursive: true });
  await connectEntry(entry);
  return entry;
}

/** The registry's live entry for `path`, waiting out one that is closing; null when none is open. */
async function liveEntry(path: string): Promise<Entry | null> {
  for (;;) {
    const slot = registry.get(path);
    if (!slot) return null;
    let entry: Entry;
    try {
      entry = await slot.pending;
    } catch {
      if (registry.get(path) === slot) registry.delete(path);
      continue;
    }
    if (!entry.closing) return entry;
    await entry.closing;
  }
}

/** Reopens a read-only entry for writing (all handles share the entry, so they all see the new connection). */
function upgradeEntry(entry: Entry, lockTimeoutMs: number): Promise<void> {
  return exclusive(entry, async () => {
    if (!entry.readOnly) return;
    disconnectEntry(entry);
    entry.readOnly = false;
    entry.lockTimeoutMs = lockTimeoutMs;
    try {
      await connectEntry(entry);
    } catch (e) {
      entry.readOnly = true;
      await connectEntry(entry).catch(() => {});
      throw e;
    }
  });
}

/**
 * Opens (creating it and its folder if needed) the results database at `path`.
 * Rejects with {@link StoreLockedError} when another process holds the file past `lockTimeoutMs`,
 * and with {@link StoreCorruptError} when the file is not a readable DuckDB database.
 */
export async function openStore(path: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const abs = resolve(path);
  for (;;) {
    let slot = registry.get(abs);
    if (!slot) {
      // Registered synchronously, so concurrent opens of one path share a single instance.
      const s = { pending: null } as unknown as Slot;
      s.pending = openEntry(abs, opts, s);
      registry.set(abs, slot = s);
    }
    let entry: Entry;
    try {
      entry = await slot.pending;
    } catch (e) {
      if (registry.get(abs) === slot) registry.delete(abs);
      throw e;
    }
    if (entry.closing) {
      await entry.closing;
      continue;
    }
    if (entry.readOnly && !opts.readOnly) await upgradeEntry(entry, opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
    entry.refs++;
    return new StoreHandle(entry, opts.readOnly ?? false);
  }
}

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

async function schemaVersionOf(conn: DuckDBConnection): Promise<string | null> {
  const t = await conn.runAndReadAll(
    "SELECT count(*)::INTEGER AS n FROM duckdb_tables() WHERE table_name = 'finelab_meta' AND schema_name = 'main'",
  );
  if (t.getRowObjectsJS()[0].n === 0) return null;
  const r = await conn.runAndReadAll("SELECT value FROM finelab_meta WHERE key = 'schema_version'");
  const rows = r.getRowObjectsJS();
  return rows.length ? String(rows[0].value) : null;
}

async function checkSchemaVersion(conn: DuckDBConnection, path: string): Promise<void> {
  const v = await schemaVersionOf(conn);
  if (v !== null && v !== String(SCHEMA_VERSION)) {
    throw new StoreCorruptError(
      `results database ${path} has schema version ${v}, this finelab writes version ${SCHEMA_VERSION}. ${REBUILD_HINT}`,
    );
  }
}

async function ensureSchema(conn: DuckDBConnection, path: string): Promise<void> {
  await checkSchemaVersion(conn, path);
  await conn.run("BEGIN TRANSACTION");
  try {
    for (const sql of schemaDdl()) await conn.run(sql);
    await conn.run("COMMIT");
  } catch (e) {
    await conn.run("ROLLBACK").catch(() => {});
    throw e;
  }
}

interface TableColumn {
  name: string;
  type: string;
}

async function tableColumns(conn: DuckDBConnection, table: string): Promise<TableColumn[]> {
  const r = await conn.runAndReadAll(
    `SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ${
      literal(table)
    } ORDER BY column_index`,
  );
  return r.getRowsJS().map(([name, type]) => ({ name: String(name), type: String(type) }));
}

// ---------------------------------------------------------------------------------------------
// Ingest
// ---------------------------------------------------------------------------------------------

/** Appends one value to the appender's current row, converting it to the column's SQL type. */
function appendValue(app: DuckDBAppender, type: string, v: unknown, where: () => string): void {
  if (v === null || v === undefined) return app.appendNull();
  const bad = (what: string) =>
    new Error(`${where()}: expected ${what} (column type ${type}), got ${JSON.stringify(v)}`);
  switch (type) {
    case "VARCHAR":
      return app.appendVarchar(typeof v === "string" ? v : typeof v === "object" ? JSON.stringify(v) : String(v));
    case "DOUBLE":
      if (typeof v !== "number") throw bad("a number");
      return app.appendDouble(v);
    case "BOOLEAN":
      if (typeof v !== "boolean") throw bad("a boolean");
      return app.appendBoolean(v);
    case "INTEGER":
      if (typeof v !== "number" || !Number.isInteger(v) || Math.abs(v) > 2 ** 31 - 1) throw bad("a 32-bit integer");
      return app.appendInteger(v);
    case "BIGINT":
      if (typeof v !== "number" || !Number.isInteger(v)) throw bad("an integer");
      return app.appendBigInt(BigInt(v));
    case "TIMESTAMP": {
      const ms = typeof v === "string" ? Date.parse(v) : NaN;
      if (Number.isNaN(ms)) throw bad("an ISO 8601 time");
      return app.appendTimestamp(new DuckDBTimestampValue(BigInt(ms) * 1000n));
    }
    default:
      throw new Error(`${where()}: the store cannot write columns of type ${type}`);
  }
}

function validateRecords(records: RunRecord[]): RunRecord[] {
  const byHash = new Map<string, RunRecord>();
  records.forEach((r, i) => {
    const hash = r?.manifest?.hash;
    if (typeof hash !== "string" || hash === "") {
      throw new Error(`records[${i}].manifest.hash must be a non-empty string, got ${JSON.stringify(hash)}`);
    }
    if (!r.status || typeof r.status.status !== "string") {
      throw new Error(`run ${hash}: status.status is missing; every record needs its status.json`);
    }
    if (!Array.isArray(r.metrics)) throw new Error(`run ${hash}: metrics must be an array (empty when none)`);
    byHash.set(hash, r); // a hash given twice: the later record wins
  });
  return [...byHash.values()];
}

/**
 * Appends rows to `table` with `fill`, then flushes. On error the unflushed rows are discarded
 * (so the original error surfaces, not an "aborted transaction" from flushing a half row).
 */
async function withAppender(conn: DuckDBConnection, table: string, fill: (app: DuckDBAppender) => void): Promise<void> {
  const app = await conn.createAppender(table);
  try {
    fill(app);
    app.flushSync();
  } catch (e) {
    try {
      app.clear();
    } catch { /* already failed: nothing left to discard */ }
    throw e;
  } finally {
    try {
      app.closeSync();
    } catch { /* only reached after an error, which is rethrown above */ }
  }
}

async function deleteWhereIn(conn: DuckDBConnection, table: string, column: string, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const list = keys.slice(i, i + 1000).map(literal).join(", ");
    await conn.run(`DELETE FROM ${table} WHERE ${column} IN (${list})`);
  }
}

/**
 * Writes records and experiments in one transaction on `conn` (rows of the same hashes/ids are replaced).
 * `fresh` skips the deletes (a just-created database).
 */
async function ingestInto(
  conn: DuckDBConnection,
  input: { records: RunRecord[]; experiments: ExperimentRow[]; fresh: boolean },
): Promise<void> {
  const records = validateRecords(input.records);
  const experiments = input.experiments;
  experiments.forEach((x, i) => {
    if (typeof x?.id !== "string" || x.id === "") throw new Error(`experiments[${i}].id must be a non-empty string`);
  });
  const flats = records.map(flatConfigOf);
  // Column types of this batch: the merge of every record's value types, in first-seen order.
  const batchTypes = new Map<string, FlatValue["type"]>();
  for (const flat of flats) {
    for (const [k, v] of flat) batchTypes.set(k, batchTypes.has(k) ? mergeType(batchTypes.get(k)!, v.type) : v.type);
  }
  const hashes = records.map((r) => r.manifest.hash);

  await conn.run("BEGIN TRANSACTION");
  try {
    // Schema evolution first (DuckDB rejects re-inserting a deleted primary key when the table was altered
    // after the delete in the same transaction): add new config columns, retype columns whose values changed type.
    const others = hashes.length ? `WHERE hash NOT IN (${hashes.map(literal).join(", ")})` : "";
    const filled = async (col: string) =>
      (await conn.runAndReadAll(`SELECT count(${ident(col)})::INTEGER AS n FROM runs ${others}`))
        .getRowObjectsJS()[0].n !== 0;
    const existing = new Map((await tableColumns(conn, "runs")).map((c) => [c.name.toLowerCase(), c]));
    for (const [name, type] of batchTypes) {
      const col = existing.get(name.toLowerCase());
      if (!col) {
        await conn.run(`ALTER TABLE runs ADD COLUMN ${ident(name)} ${type ?? "VARCHAR"}`);
      } else if (type !== null && type !== col.type) {
        // A column no other run fills takes the new type; a filled DOUBLE/BOOLEAN column widens to VARCHAR;
        // a filled VARCHAR column stays and receives the values as text.
        const target = !(await filled(col.name)) ? type : "VARCHAR";
        const c = ident(col.name);
        // TRY_CAST: values that do not convert can only belong to the runs being replaced (deleted below).
        if (target !== col.type) {
          await conn.run(`ALTER TABLE runs ALTER COLUMN ${c} TYPE ${target} USING TRY_CAST(${c} AS ${target})`);
        }
      }
    }
    if (!input.fresh) {
      for (const t of ["metrics", "run_metrics", "runs"]) await deleteWhereIn(conn, t, "hash", hashes);
      await deleteWhereIn(conn, "experiments", "id", experiments.map((x) => x.id));
      await deleteWhereIn(conn, "experiment_runs", "experiment", experiments.filter((x) => x.plan).map((x) => x.id));
      faultPoint("db.delete");
    }
    const columns = await tableColumns(conn, "runs");
    const fixed = new Map(RUN_COLUMNS.map((c) => [c.name, c]));

    await withAppender(conn, "runs", (runsApp) => {
      records.forEach((r, i) => {
        const flat = new Map([...flats[i]].map(([k, v]) => [k.toLowerCase(), v.value]));
        for (const col of columns) {
          const f = fixed.get(col.name);
          const v = f ? f.get(r) : flat.get(col.name.toLowerCase());
          appendValue(runsApp, col.type, v, () => `run ${r.manifest.hash}, column runs.${col.name}`);
        }
        runsApp.endRow();
      });
    });
    faultPoint("db.append");

    await withAppender(conn, "metrics", (metricsApp) => {
      for (const r of records) {
        const hash = r.manifest.hash;
        r.metrics.forEach((m, j) => {
          const where = () => `run ${hash}, metrics.jsonl row ${j + 1}`;
          metricsApp.appendVarchar(hash);
          appendValue(metricsApp, "INTEGER", m.step, () => `${where()}, field step`);
          if (typeof m.split !== "string") throw new Error(`${where()}: split must be a string`);
          if (typeof m.name !== "string") throw new Error(`${where()}: name must be a string`);
          metricsApp.appendVarchar(m.split);
          metricsApp.appendVarchar(m.name);
          appendValue(metricsApp, "DOUBLE", m.value, () => `${where()}, field value`);
          metricsApp.endRow();
        });
      }
    });

    await withAppender(conn, "run_metrics", (extraApp) => {
      for (const r of records) {
        for (const [name, value] of Object.entries(r.summary?.extra ?? {})) {
          extraApp.appendVarchar(r.manifest.hash);
          extraApp.appendVarchar(name);
          appendValue(extraApp, "DOUBLE", value, () => `run ${r.manifest.hash}, summary.extra.${name}`);
          extraApp.endRow();
        }
      }
    });

    const now = new Date().toISOString();
    await withAppender(conn, "experiments", (expApp) => {
      experiments.forEach((x, i) => {
        const where = () => `experiments[${i}] (${x.id})`;
        expApp.appendVarchar(x.id);
        appendValue(expApp, "VARCHAR", x.description, () => `${where()}.description`);
        appendValue(expApp, "VARCHAR", x.module, () => `${where()}.module`);
        appendValue(expApp, "INTEGER", x.n_runs, () => `${where()}.n_runs`);
        appendValue(expApp, "TIMESTAMP", x.updated_at ?? now, () => `${where()}.updated_at`);
        expApp.endRow();
      });
    });
    await withAppender(conn, "experiment_runs", (app) => {
      for (const x of experiments) {
        for (const r of x.plan?.runs ?? []) {
          app.appendVarchar(x.id);
          app.appendVarchar(r.hash);
          app.appendVarchar(r.run_id);
          app.appendVarchar(x.plan!.scale);
          app.endRow();
        }
      }
    });
    faultPoint("db.commit");
    await conn.run("COMMIT");
  } catch (e) {
    await conn.run("ROLLBACK").catch(() => {});
    throw e;
  }
  faultPoint("db.committed");
}

// ---------------------------------------------------------------------------------------------
// Rebuild
// ---------------------------------------------------------------------------------------------

async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Builds a complete database at `tmp` from the records; removes it again on failure. */
async function buildFile(tmp: string, records: RunRecord[], experiments: ExperimentRow[]): Promise<void> {
  await removeIfExists(tmp);
  await removeIfExists(`${tmp}.wal`);
  try {
    const inst = await DuckDBInstance.create(tmp);
    try {
      const conn = await inst.connect();
      try {
        await ensureSchema(conn, tmp);
        await ingestInto(conn, { records, experiments, fresh: true });
        await conn.run("CHECKPOINT");
      } finally {
        conn.closeSync();
      }
    } finally {
      inst.closeSync();
    }
  } catch (e) {
    await removeIfExists(tmp);
    await removeIfExists(`${tmp}.wal`);
    throw e;
  }
}

/** Moves the finished `tmp` database over `path` (dropping `path`'s WAL, which belongs to the old file). */
async function swapIn(tmp: string, path: string): Promise<void> {
  await removeIfExists(`${tmp}.wal`);
  await removeIfExists(`${path}.wal`);
  faultPoint("db.swap");
  await Deno.rename(tmp, path);
}

function tmpPathFor(path: string): string {
  return `${path}.rebuild-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.tmp`;
}

async function rebuildEntry(entry: Entry, records: RunRecord[], experiments: ExperimentRow[]): Promise<void> {
  const tmp = tmpPathFor(entry.path);
  await buildFile(tmp, records, experiments); // the open database is untouched until this succeeded
  disconnectEntry(entry);
  try {
    await swapIn(tmp, entry.path);
  } finally {
    await connectEntry(entry);
  }
}

/** Options of {@link rebuildStore}. */
export interface RebuildOptions {
  /** See {@link OpenStoreOptions.lockTimeoutMs}. */
  lockTimeoutMs?: number;
}

/**
 * Recreates the database at `path` from the given records, without opening the old file's contents:
 * this is what `deno task db rebuild` calls, and it works when the old file is corrupt.
 * While the new file is built, the old one stays locked (when readable), so no other process writes to it.
 */
export async function rebuildStore(
  path: string,
  data: { records: RunRecord[]; experiments: ExperimentRow[] },
  opts: RebuildOptions = {},
): Promise<void> {
  const abs = resolve(path);
  const lockTimeoutMs = opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const entry = await liveEntry(abs);
  if (entry) {
    if (entry.readOnly) await upgradeEntry(entry, lockTimeoutMs);
    return exclusive(entry, () => rebuildEntry(entry, data.records, data.experiments));
  }
  await Deno.mkdir(dirname(abs), { recursive: true });
  let holder: DuckDBInstance | null = null;
  if (await exists(abs)) {
    try {
      holder = await createInstance(abs, false, lockTimeoutMs);
    } catch (e) {
      if (!(e instanceof StoreCorruptError)) throw e; // a corrupt file is simply replaced
    }
  }
  const tmp = tmpPathFor(abs);
  try {
    await buildFile(tmp, data.records, data.experiments);
  } finally {
    holder?.closeSync();
  }
  await swapIn(tmp, abs);
}

// ---------------------------------------------------------------------------------------------
// The handle
// ---------------------------------------------------------------------------------------------

class StoreHandle implements Store {
  #entry: Entry;
  #closed = false;
  readonly path: string;
  readonly readOnly: boolean;

  constructor(entry: Entry, readOnly: boolean) {
    this.#entry = entry;
    this.path = entry.path;
    this.readOnly = readOnly;
  }

  #conn(): DuckDBConnection {
    if (this.#closed) throw new Error(`store ${this.path} is closed`);
    const conn = this.#entry.conn;
    if (!conn) throw new Error(`store ${this.path} lost its connection (a reopen failed); open it again`);
    return conn;
  }

  #writable(op: string): void {
    if (this.#closed) throw new Error(`store ${this.path} is closed`);
    if (this.readOnly) throw new Error(`store ${this.path} was opened read-only; cannot ${op}`);
  }

  ingest(records: RunRecord[], experiments: ExperimentRow[] = []): Promise<void> {
    try {
      this.#writable("ingest");
    } catch (e) {
      return Promise.reject(e);
    }
    return exclusive(
      this.#entry,
      () =>
        ingestInto(this.#conn(), { records, experiments, fresh: false }).catch((e) => {
          throw asCorrupt(e, this.path);
        }),
    );
  }

  rebuild(records: RunRecord[], experiments: ExperimentRow[]): Promise<void> {
    try {
      this.#writable("rebuild");
    } catch (e) {
      return Promise.reject(e);
    }
    return exclusive(this.#entry, () => rebuildEntry(this.#entry, records, experiments));
  }

  query(sql: string, params?: Record<string, QueryParam>): Promise<QueryResult> {
    return exclusive(this.#entry, async () => {
      let reader;
      try {
        reader = await this.#conn().runAndReadAll(sql, params);
      } catch (e) {
        // A damaged block surfaces when a query reads it: report it as the corrupt file it is.
        throw /^IO Error/.test(messageOf(e)) ? asCorrupt(e, this.path) : e;
      }
      return toQueryResult(reader);
    });
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    const entry = this.#entry;
    entry.refs--;
    if (entry.refs > 0) return Promise.resolve();
    entry.closing = exclusive(entry, () => {
      disconnectEntry(entry);
      return Promise.resolve();
    }).finally(() => {
      if (registry.get(entry.path) === entry.slot) registry.delete(entry.path);
    });
    return entry.closing;
  }
}
