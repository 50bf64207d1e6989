/**
 * The `bench` table: one row per measured process of `deno task bench` (bench/main.ts), i.e. one
 * backend (or peer) x FFN kind x repeat, with the machine and backend details. The JSON files in
 * `results/bench/` are the source of truth (bench/main.ts writes one per invocation);
 * {@link ingestBenchFiles} (re)loads them, e.g. after `deno task db rebuild`.
 *
 * ```sql
 * SELECT backend, ffn, median(median_ms) AS ms, median(tokens_per_sec) AS tok_s
 * FROM bench WHERE bench_id = (SELECT max(bench_id) FROM bench) GROUP BY ALL;
 * ```
 *
 * @module
 */
import { join } from "node:path";
import type { Store } from "./mod.ts";

/** One row of the `bench` table. */
export interface BenchRow {
  /** Id of the bench invocation (UTC time, `YYYYMMDDTHHMMSSZ`), shared by its rows. */
  bench_id: string;
  /** ISO time the row's process finished. */
  measured_at: string;
  /** Backend (`native`, `wasm`, ...) or peer (`torch`). */
  backend: string;
  /** FFN kind of the model. */
  ffn: string;
  /** Position of this run in the A B A B order (0-based). */
  repeat: number;
  threads: number;
  steps: number;
  warmup: number;
  batch_size: number;
  seq_len: number;
  params: number;
  /** Median / min / max of this run's timed steps, ms. */
  median_ms: number;
  min_ms: number;
  max_ms: number;
  tokens_per_sec: number;
  /** Model FLOP/s (3 x forward FLOPs per token) at the median step time, in GFLOP/s. */
  gflops: number | null;
  /** gflops / peak_gflops. */
  mfu: number | null;
  /** The machine's measured FP32 peak for these threads, GFLOP/s (null when not measured). */
  peak_gflops: number | null;
  peak_method: string | null;
  peak_rss_bytes: number | null;
  /** Cores this process used during the timed steps, and the machine's 1-minute load average after them. */
  self_cores: number | null;
  load_avg_1m: number | null;
  /** Loss of the last step; all steps' losses (warmup included) as a JSON array. */
  final_loss: number | null;
  losses_json: string;
  /** Backend details (BLAS, kernels, threads, versions) as JSON. */
  backend_json: string;
  cpu: string;
  cpus: number;
  os: string;
  deno: string;
  git_commit: string | null;
}

const COLUMNS: [keyof BenchRow, string][] = [
  ["bench_id", "VARCHAR"],
  ["measured_at", "TIMESTAMP"],
  ["backend", "VARCHAR"],
  ["ffn", "VARCHAR"],
  ["repeat", "INTEGER"],
  ["threads", "INTEGER"],
  ["steps", "INTEGER"],
  ["warmup", "INTEGER"],
  ["batch_size", "INTEGER"],
  ["seq_len", "INTEGER"],
  ["params", "BIGINT"],
  ["median_ms", "DOUBLE"],
  ["min_ms", "DOUBLE"],
  ["max_ms", "DOUBLE"],
  ["tokens_per_sec", "DOUBLE"],
  ["gflops", "DOUBLE"],
  ["mfu", "DOUBLE"],
  ["peak_gflops", "DOUBLE"],
  ["peak_method", "VARCHAR"],
  ["peak_rss_bytes", "BIGINT"],
  ["self_cores", "DOUBLE"],
  ["load_avg_1m", "DOUBLE"],
  ["final_loss", "DOUBLE"],
  ["losses_json", "VARCHAR"],
  ["backend_json", "VARCHAR"],
  ["cpu", "VARCHAR"],
  ["cpus", "INTEGER"],
  ["os", "VARCHAR"],
  ["deno", "VARCHAR"],
  ["git_commit", "VARCHAR"],
];

/** The table's DDL (idempotent). */
export const BENCH_DDL: string = `CREATE TABLE IF NOT EXISTS bench (\n  ${
  COLUMNS.map(([c, t]) => `${c} ${t}`).join(",\n  ")
},\n  PRIMARY KEY (bench_id, backend, ffn, repeat)\n)`;

/** Creates the table if needed and writes the rows (replacing rows with the same key), in one transaction. */
export async function insertBench(store: Store, rows: readonly BenchRow[]): Promise<void> {
  await store.query(BENCH_DDL);
  if (!rows.length) return;
  const cols = COLUMNS.map(([c]) => c);
  const sql = `INSERT OR REPLACE INTO bench (${cols.join(", ")}) VALUES (${
    COLUMNS.map(([c, t]) => (t === "TIMESTAMP" ? `CAST($${c} AS TIMESTAMP)` : `$${c}`)).join(", ")
  })`;
  await store.query("BEGIN TRANSACTION");
  try {
    for (const r of rows) {
      const params: Record<string, string | number | boolean | null> = {};
      for (const c of cols) {
        const v = r[c];
        params[c] = v === undefined ? null : v as string | number | null;
      }
      await store.query(sql, params);
    }
    await store.query("COMMIT");
  } catch (e) {
    await store.query("ROLLBACK").catch(() => {});
    throw e;
  }
}

/** A bench results file (results/bench/<bench_id>.json) as bench/main.ts writes it. */
export interface BenchFile {
  bench_id: string;
  rows: BenchRow[];
  [more: string]: unknown;
}

/** Reads every results/bench/*.json file under `dir` and inserts its rows; returns the row count. */
export async function ingestBenchFiles(store: Store, dir: string): Promise<number> {
  let n = 0;
  const rows: BenchRow[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !e.name.endsWith(".json")) continue;
      const f = JSON.parse(await Deno.readTextFile(join(dir, e.name))) as BenchFile;
      if (Array.isArray(f.rows)) rows.push(...f.rows);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await insertBench(store, rows);
  n += rows.length;
  return n;
}
