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
import type { DuckDBConnection } from "@duckdb/node-api";
import { resolve } from "node:path";
import type { RunRecord } from "../core/records.ts";
import { type QueryResult, toQueryResult } from "./result.ts";

export type { JsonValue, QueryColumn, QueryResult } from "./result.ts";
export { formatFloat, type FormatOptions, formatResult, OUTPUT_FORMATS, type OutputFormat } from "./format.ts";
export { RUN_COLUMNS, SCHEMA_VERSION } from "./schema.ts";

export {
  DEFAULT_LOCK_TIMEOUT_MS,
  type ExperimentRow,
  type OpenStoreOptions,
  type QueryParam,
  type Store,
  StoreCorruptError,
  StoreLockedError,
} from "./types.ts";
export { type RebuildData, type RebuildOptions, rebuildStore } from "./rebuild.ts";
export type { IngestBatch } from "./ingest.ts";
import {
  DEFAULT_LOCK_TIMEOUT_MS,
  type ExperimentRow,
  type OpenStoreOptions,
  type QueryParam,
  type Store,
} from "./types.ts";
import {
  asCorrupt,
  disconnectEntry,
  type Entry,
  exclusive,
  messageOf,
  openEntry,
  registry,
  type Slot,
  upgradeEntry,
} from "./pool.ts";
import { ingestInto } from "./ingest.ts";
import { rebuildEntry } from "./rebuild.ts";

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
    return exclusive(this.#entry, () => rebuildEntry(this.#entry, { records, experiments }));
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
