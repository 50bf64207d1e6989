/**
 * Opening DuckDB files: one instance per file per process (a registry of shared entries), operations
 * of a process on one file one at a time, retries while another process holds the lock, and DuckDB's
 * errors mapped to clear ones.
 *
 * @module
 */
import { DEFAULT_LOCK_TIMEOUT_MS } from "./types.ts";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { dirname } from "node:path";
import { type OpenStoreOptions, REBUILD_HINT, StoreCorruptError, StoreLockedError } from "./types.ts";
import { checkSchemaVersion, ensureSchema } from "./ingest.ts";

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const CORRUPT =
  /not a valid DuckDB database|corrupt|checksum|version number|replaying WAL|Could not read enough bytes/i;

/** `e` as a {@link StoreCorruptError} when DuckDB's message says the file is damaged; otherwise `e` itself. */
export function asCorrupt(e: unknown, path: string): unknown {
  const msg = messageOf(e);
  if (e instanceof StoreCorruptError || !CORRUPT.test(msg)) return e;
  return new StoreCorruptError(`cannot read results database ${path}: ${msg.split("\n")[0]}. ${REBUILD_HINT}`);
}

/**
 * Settings of a writing instance: the write-ahead log is checkpointed into the file once it holds 256 KiB
 * (a few dozen runs), not on every close. A commit is durable once its WAL record is synced (DuckDB syncs at
 * COMMIT); the next open, read-only ones included, replays the WAL. Closing after ingesting one run then
 * costs no rewrite of the file's changed blocks.
 */
export const WRITER_CONFIG: Record<string, string> = { wal_autocheckpoint: "256KiB" };

/** Opens a DuckDB instance, retrying while another process holds the lock; maps errors to clear ones. */
export async function createInstance(path: string, readOnly: boolean, lockTimeoutMs: number): Promise<DuckDBInstance> {
  const start = Date.now();
  let delay = 50;
  for (;;) {
    try {
      return await DuckDBInstance.create(path, readOnly ? { access_mode: "READ_ONLY" } : WRITER_CONFIG);
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

export interface Entry {
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

export interface Slot {
  pending: Promise<Entry>;
}

/** Resolved path -> the open (or opening) entry of this process. */
export const registry = new Map<string, Slot>();

/** Runs `fn` after every earlier operation on the same file. */
export function exclusive<T>(entry: Entry, fn: () => Promise<T>): Promise<T> {
  const run = entry.tail.then(fn, fn);
  entry.tail = run.catch(() => {});
  return run;
}

export async function connectEntry(entry: Entry): Promise<void> {
  const instance = await createInstance(entry.path, entry.readOnly, entry.lockTimeoutMs);
  let conn: DuckDBConnection | null = null;
  try {
    conn = await instance.connect();
    if (entry.readOnly) await checkSchemaVersion(conn, entry.path);
    else {
      await ensureSchema(conn, entry.path);
      // Closing leaves the WAL to the auto-checkpoint (see WRITER_CONFIG) instead of checkpointing every time.
      await conn.run("PRAGMA disable_checkpoint_on_shutdown");
    }
  } catch (e) {
    conn?.closeSync();
    instance.closeSync();
    throw asCorrupt(e, entry.path);
  }
  entry.instance = instance;
  entry.conn = conn;
}

export function disconnectEntry(entry: Entry): void {
  entry.conn?.closeSync();
  entry.instance?.closeSync();
  entry.conn = null;
  entry.instance = null;
}

export async function openEntry(path: string, opts: OpenStoreOptions, slot: Slot): Promise<Entry> {
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
export async function liveEntry(path: string): Promise<Entry | null> {
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
export function upgradeEntry(entry: Entry, lockTimeoutMs: number): Promise<void> {
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
