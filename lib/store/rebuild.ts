/**
 * Rebuilding the database: a new file built beside the old one from the records, renamed over it.
 *
 * @module
 */
import { exists } from "../util/fs.ts";
import { StoreCorruptError } from "./types.ts";
import { connectEntry, disconnectEntry, exclusive, liveEntry, upgradeEntry } from "./pool.ts";
import { DuckDBInstance } from "@duckdb/node-api";
import { dirname, resolve } from "node:path";
import type { RunRecord } from "../core/records.ts";
import { DEFAULT_LOCK_TIMEOUT_MS, type ExperimentRow } from "./types.ts";
import { createInstance, type Entry } from "./pool.ts";
import { ensureSchema, type IngestBatch, ingestInto, insertMetricFiles } from "./ingest.ts";
import { faultPoint } from "../util/fault.ts";

export async function removeIfExists(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/**
 * What a rebuild writes: `records`, and/or `batches` ingested one after another (so that a 100k-run cache
 * never sits in memory at once), then `experiments` (a function: called once the batches are consumed).
 */
export interface RebuildData {
  records?: RunRecord[];
  batches?: AsyncIterable<IngestBatch>;
  experiments: ExperimentRow[] | (() => Promise<ExperimentRow[]>);
}

/** Builds a complete database at `tmp` from the records; removes it again on failure. */
export async function buildFile(tmp: string, data: RebuildData): Promise<void> {
  await removeIfExists(tmp);
  await removeIfExists(`${tmp}.wal`);
  try {
    const inst = await DuckDBInstance.create(tmp);
    try {
      const conn = await inst.connect();
      // A second connection inserts each batch's metrics files (DuckDB's JSON reader, on its own threads) while
      // the first appends the batch's runs rows and this thread verifies the next batch: the three overlap.
      // Batches are not atomic here (nothing is: a failed build is removed whole).
      const metricsConn = await inst.connect();
      let metrics: Promise<void> | null = null;
      try {
        await ensureSchema(conn, tmp);
        for await (const b of data.batches ?? []) {
          await metrics; // one metrics insert at a time
          metrics = b.metricFiles?.size ? insertMetricFiles(metricsConn, b.metricFiles) : null;
          metrics?.catch(() => {}); // awaited (and its error thrown) before the next batch or at the end
          await ingestInto(conn, { records: b.records, experiments: [], fresh: true });
        }
        await metrics;
        const experiments = typeof data.experiments === "function" ? await data.experiments() : data.experiments;
        await ingestInto(conn, { records: data.records ?? [], experiments, fresh: true });
        await conn.run("CHECKPOINT");
      } finally {
        await metrics?.catch(() => {}); // never close under a running statement
        metricsConn.closeSync();
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
export async function swapIn(tmp: string, path: string): Promise<void> {
  await removeIfExists(`${tmp}.wal`);
  await removeIfExists(`${path}.wal`);
  faultPoint("db.swap");
  await Deno.rename(tmp, path);
}

export function tmpPathFor(path: string): string {
  return `${path}.rebuild-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}.tmp`;
}

export async function rebuildEntry(entry: Entry, data: RebuildData): Promise<void> {
  const tmp = tmpPathFor(entry.path);
  await buildFile(tmp, data); // the open database is untouched until this succeeded
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
  data: RebuildData,
  opts: RebuildOptions = {},
): Promise<void> {
  const abs = resolve(path);
  const lockTimeoutMs = opts.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const entry = await liveEntry(abs);
  if (entry) {
    if (entry.readOnly) await upgradeEntry(entry, lockTimeoutMs);
    return exclusive(entry, () => rebuildEntry(entry, data));
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
    await buildFile(tmp, data);
  } finally {
    holder?.closeSync();
  }
  await swapIn(tmp, abs);
}
