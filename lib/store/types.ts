/**
 * The store's public types and errors (lib/store/mod.ts re-exports them).
 *
 * @module
 */
import type { RunRecord } from "../core/records.ts";
import type { QueryResult } from "./result.ts";

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

export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
export const REBUILD_HINT =
  "The database is only an index of results/cache/: `deno task db rebuild` recreates it from the cache.";
