/**
 * The schema (created and version-checked on open) and ingest: the rows of the given runs replaced in
 * one transaction with DuckDB's Appender, config columns added or widened as records need them.
 *
 * @module
 */
import { REBUILD_HINT, StoreCorruptError } from "./types.ts";
import { type DuckDBAppender, type DuckDBConnection, DuckDBTimestampValue } from "@duckdb/node-api";
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
import type { ExperimentRow } from "./types.ts";
import { faultPoint } from "../util/fault.ts";
import { sha256Hex } from "../core/hash.ts";

export async function schemaVersionOf(conn: DuckDBConnection): Promise<string | null> {
  const t = await conn.runAndReadAll(
    "SELECT count(*)::INTEGER AS n FROM duckdb_tables() WHERE table_name = 'finelab_meta' AND schema_name = 'main'",
  );
  if (t.getRowObjectsJS()[0].n === 0) return null;
  const r = await conn.runAndReadAll("SELECT value FROM finelab_meta WHERE key = 'schema_version'");
  const rows = r.getRowObjectsJS();
  return rows.length ? String(rows[0].value) : null;
}

export async function checkSchemaVersion(conn: DuckDBConnection, path: string): Promise<void> {
  const v = await schemaVersionOf(conn);
  if (v !== null && v !== String(SCHEMA_VERSION)) {
    throw new StoreCorruptError(
      `results database ${path} has schema version ${v}, this finelab writes version ${SCHEMA_VERSION}. ${REBUILD_HINT}`,
    );
  }
}

/** sha256 of the schema's DDL: stored in `finelab_meta` (`schema_digest`) once a file has that schema. */
export function schemaDigest(): string {
  return sha256Hex(schemaDdl().join(";\n"));
}

/** The `finelab_meta` value of `key`; null when absent or when the file has no `finelab_meta` table yet. */
async function metaValue(conn: DuckDBConnection, key: string): Promise<string | null> {
  try {
    const rows = (await conn.runAndReadAll(`SELECT value FROM finelab_meta WHERE key = ${literal(key)}`))
      .getRowObjectsJS();
    return rows.length ? String(rows[0].value) : null;
  } catch (e) {
    if (/Catalog Error/.test((e as Error).message)) return null;
    throw e;
  }
}

/**
 * Creates the schema or brings an older file up to it (added columns; the primary key on `runs.hash` that
 * files written before it was dropped carry is removed). Skipped, apart from one read, when the file's
 * `schema_digest` says it already has this schema.
 */
export async function ensureSchema(conn: DuckDBConnection, path: string): Promise<void> {
  await checkSchemaVersion(conn, path);
  const digest = schemaDigest();
  if ((await metaValue(conn, "schema_digest")) === digest) return;
  await conn.run("BEGIN TRANSACTION");
  try {
    await dropRunsPrimaryKey(conn);
    for (const sql of schemaDdl()) await conn.run(sql);
    await conn.run(`INSERT OR REPLACE INTO finelab_meta VALUES ('schema_digest', ${literal(digest)})`);
    await conn.run("COMMIT");
  } catch (e) {
    await conn.run("ROLLBACK").catch(() => {});
    throw e;
  }
}

/**
 * Removes the primary key of `runs.hash` from a file written when it had one (its index, loaded and updated
 * by every ingest, made one run's ingest cost grow with the database). DuckDB cannot drop a constraint in
 * place: the table is copied without it. Uniqueness of `hash` is kept by ingest (delete, then insert).
 */
async function dropRunsPrimaryKey(conn: DuckDBConnection): Promise<void> {
  const r = await conn.runAndReadAll(
    `SELECT count(*)::INTEGER AS n FROM duckdb_constraints() WHERE schema_name = 'main' AND table_name = 'runs' ` +
      `AND constraint_type = 'PRIMARY KEY'`,
  );
  if (r.getRowObjectsJS()[0].n === 0) return;
  await conn.run("CREATE TABLE runs_without_key AS SELECT * FROM runs");
  await conn.run("DROP TABLE runs");
  await conn.run("ALTER TABLE runs_without_key RENAME TO runs");
}

export interface TableColumn {
  name: string;
  type: string;
}

export async function tableColumns(conn: DuckDBConnection, table: string): Promise<TableColumn[]> {
  const r = await conn.runAndReadAll(
    `SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = 'main' AND table_name = ${
      literal(table)
    } ORDER BY column_index`,
  );
  return r.getRowsJS().map(([name, type]) => ({ name: String(name), type: String(type) }));
}

/** Appends one value to the appender's current row, converting it to the column's SQL type. */
export function appendValue(app: DuckDBAppender, type: string, v: unknown, where: () => string): void {
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

export function validateRecords(records: RunRecord[]): RunRecord[] {
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
export async function withAppender(
  conn: DuckDBConnection,
  table: string,
  fill: (app: DuckDBAppender) => void,
): Promise<void> {
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

export async function deleteWhereIn(
  conn: DuckDBConnection,
  table: string,
  column: string,
  keys: string[],
): Promise<void> {
  for (let i = 0; i < keys.length; i += 1000) {
    const list = keys.slice(i, i + 1000).map(literal).join(", ");
    await conn.run(`DELETE FROM ${table} WHERE ${column} IN (${list})`);
  }
}

/** One batch of a bulk ingest (a rebuild streams the cache in these). */
export interface IngestBatch {
  records: RunRecord[];
  /**
   * Metric rows given as files rather than arrays: run hash -> path of its metrics.jsonl (one MetricRow of
   * JSON per line), for records that carry `metrics: []`. DuckDB parses the files itself, in bulk and in
   * parallel with the caller's reading of the next batch: what makes a rebuild of 100k runs affordable.
   */
  metricFiles?: ReadonlyMap<string, string>;
}

/**
 * Inserts the metric rows of each run's metrics.jsonl (see {@link IngestBatch.metricFiles}), read by DuckDB
 * in one statement (in the caller's transaction, or its own). The rows are stored ordered by split and name: the
 * row groups' min/max then let a query of one metric (`split = 'val' AND name = 'loss'`) skip most of the table
 * (4x less scanned at 100k runs), for a few percent more work here.
 */
export async function insertMetricFiles(conn: DuckDBConnection, files: ReadonlyMap<string, string>): Promise<void> {
  const entries = [...files];
  const list = entries.map(([, path]) => literal(path)).join(", ");
  const pairs = entries.map(([hash, path]) => `(${literal(path)}, ${literal(hash)})`).join(", ");
  try {
    await conn.run(
      `INSERT INTO metrics (hash, step, split, name, value)
       SELECT f.hash, m.step, m.split, m.name, m.value
       FROM read_json([${list}], format = 'newline_delimited', filename = true,
         columns = {step: 'INTEGER', split: 'VARCHAR', name: 'VARCHAR', value: 'DOUBLE'}) m
       JOIN (VALUES ${pairs}) f(path, hash) ON m.filename = f.path
       ORDER BY m.split, m.name`,
    );
  } catch (e) {
    throw new Error(`reading metrics.jsonl of ${entries.length} runs (${entries[0][1]}, ...): ${(e as Error).message}`);
  }
}

/**
 * Writes records and experiments in one transaction on `conn` (rows of the same hashes/ids are replaced).
 * `fresh` skips the deletes (a just-created database).
 */
export async function ingestInto(
  conn: DuckDBConnection,
  input: {
    records: RunRecord[];
    experiments: ExperimentRow[];
    fresh: boolean;
    metricFiles?: ReadonlyMap<string, string>;
  },
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
    // Schema evolution first (before the deletes): add new config columns, retype columns whose values changed type.
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
      // Only runs already stored have rows to replace (one scan of runs.hash spares new runs a scan of metrics).
      // Deleting before appending keeps runs.hash unique (the table has no key: its index cost every ingest).
      const stored: string[] = [];
      for (let i = 0; i < hashes.length; i += 1000) {
        const list = hashes.slice(i, i + 1000).map(literal).join(", ");
        const r = await conn.runAndReadAll(`SELECT hash FROM runs WHERE hash IN (${list})`);
        for (const [h] of r.getRowsJS()) stored.push(String(h));
      }
      for (const t of ["metrics", "run_metrics", "runs"]) await deleteWhereIn(conn, t, "hash", stored);
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

    if (input.metricFiles?.size) await insertMetricFiles(conn, input.metricFiles);

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
