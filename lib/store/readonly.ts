/**
 * Read-only SQL over a results folder: what `deno task query` (and the dashboard's SQL box) run.
 *
 * ```ts
 * import { openReadOnly, queryReadOnly } from "./lib/store/readonly.ts";
 * const [first] = await queryReadOnly("results", "SELECT run_id, val_ppl FROM runs"); // open, run, close
 * const db = await openReadOnly("results"); // or keep one connection open
 * try {
 *   for (const s of await db.run("SELECT 1 AS a; SELECT 2 AS b")) console.log(s.index, s.type, s.result.rows);
 * } finally {
 *   db.close();
 * }
 * ```
 *
 * Three layers, so that no statement can change anything:
 * 1. the database is opened with `access_mode = READ_ONLY` (no INSERT, UPDATE, DELETE, CREATE, ...);
 * 2. `enable_external_access = false` with `allowed_directories = [<results folder>]`: no file outside the
 *    results folder can be read or written (`read_csv('/etc/passwd')`, `COPY ... TO '/tmp/x'`, `ATTACH`,
 *    `INSTALL`/`LOAD` of extensions all fail), then `lock_configuration = true` so no `SET` can undo it;
 * 3. every statement of a call is prepared and its type checked before any runs: only SELECT (with
 *    DESCRIBE, SHOW, SUMMARIZE, PRAGMA table_info...), EXPLAIN and CALL run; anything else (writes, DDL,
 *    COPY, ATTACH, INSTALL/LOAD, SET, transactions, EXPORT) is refused with a {@link QueryRefusedError}
 *    naming the statement, and then nothing of the call runs.
 *
 * Several statements in one call run in order and each one's result is returned; none is dropped.
 *
 * @module
 */
import { type DuckDBConnection, type DuckDBInstance, type DuckDBValue, StatementType } from "@duckdb/node-api";
import { resolve } from "node:path";
import { createInstance } from "./pool.ts";
import { checkSchemaVersion } from "./ingest.ts";
import { type QueryResult, toQueryResult } from "./result.ts";

/** A statement refused by the read-only console (a write, DDL, COPY, ATTACH, INSTALL/LOAD, SET, file access). */
export class QueryRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QueryRefusedError";
  }
}

/** SQL that DuckDB cannot parse, bind or run (unknown table or column, syntax error...): DuckDB's message. */
export class QuerySqlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QuerySqlError";
  }
}

/** The result of one statement of a call. */
export interface StatementResult {
  /** 1-based position of the statement in the call. */
  index: number;
  /** DuckDB's statement type: SELECT, EXPLAIN or CALL. */
  type: string;
  result: QueryResult;
}

/** A read-only connection to the results database of one results folder. */
export interface ReadOnlyDb {
  /** The database file. */
  readonly path: string;
  /** The results folder: the only folder SQL may read files from. */
  readonly resultsDir: string;
  /**
   * Checks every statement of `sql`, then runs them in order and returns each one's result.
   * Rejects with {@link QueryRefusedError} (nothing run) or {@link QuerySqlError}. `params` bind `$name`
   * placeholders of a single statement.
   */
  run(sql: string, params?: Record<string, DuckDBValue>): Promise<StatementResult[]>;
  /** Closes the connection (idempotent). */
  close(): void;
}

/** Options of {@link openReadOnly}. */
export interface ReadOnlyOptions {
  /** The database file (default `<resultsDir>/results.duckdb`). */
  db?: string;
  /** How long to wait while a writer holds the file, ms (default 30000). */
  lockTimeoutMs?: number;
}

/** Statement types that only read. DESCRIBE, SHOW, SUMMARIZE and PRAGMA table_info are SELECTs in DuckDB. */
const ALLOWED = new Set([StatementType.SELECT, StatementType.EXPLAIN, StatementType.CALL]);

/** Why a statement type is refused (the default: it changes something). */
function refusal(type: StatementType): string {
  switch (type) {
    case StatementType.INSERT:
    case StatementType.UPDATE:
    case StatementType.DELETE:
    case StatementType.MERGE_INTO:
      return "it writes to the database";
    case StatementType.CREATE:
    case StatementType.CREATE_FUNC:
    case StatementType.ALTER:
    case StatementType.DROP:
      return "it changes the schema (DDL)";
    case StatementType.COPY:
    case StatementType.EXPORT:
    case StatementType.COPY_DATABASE:
      return "it copies data to or from files";
    case StatementType.ATTACH:
    case StatementType.DETACH:
      return "it attaches other database files";
    case StatementType.LOAD:
    case StatementType.EXTENSION:
    case StatementType.UPDATE_EXTENSIONS:
      return "it installs or loads extensions";
    case StatementType.SET:
    case StatementType.VARIABLE_SET:
      return "it changes settings";
    default:
      return "only SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN and CALL run here";
  }
}

const HELP = "`deno task query` is read-only: SELECT (and DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) over the results; " +
  "files can be read from the results folder only. To change results, rerun or rebuild (`deno task db rebuild`).";

const sqlQuote = (s: string) => `'${s.replaceAll("'", "''")}'`;

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/** A DuckDB error as a refusal (file access outside the results folder) or a SQL error. */
function mapError(e: unknown, index: number, count: number): Error {
  const msg = firstLine(e);
  const where = count > 1 ? `statement ${index} of ${count}: ` : "";
  if (/^Permission Error|disabled (by|through) configuration|read-only mode/i.test(msg)) {
    return new QueryRefusedError(
      `refused ${where}file access outside the results folder: ${msg.replace(/^[A-Za-z ]+Error: /, "")}; ` +
        `nothing was run. ${HELP}`,
    );
  }
  return new QuerySqlError(`${where}${msg.replace(/^Failed to extract statements: /, "")}`);
}

class ReadOnlyConnection implements ReadOnlyDb {
  #instance: DuckDBInstance | null;
  #conn: DuckDBConnection | null;
  #tail: Promise<unknown> = Promise.resolve();
  constructor(readonly path: string, readonly resultsDir: string, instance: DuckDBInstance, conn: DuckDBConnection) {
    this.#instance = instance;
    this.#conn = conn;
  }

  run(sql: string, params?: Record<string, DuckDBValue>): Promise<StatementResult[]> {
    // One call at a time on the connection (DuckDB's connection is not re-entrant).
    const run = this.#tail.then(() => this.#run(sql, params));
    this.#tail = run.catch(() => {});
    return run;
  }

  async #run(sql: string, params?: Record<string, DuckDBValue>): Promise<StatementResult[]> {
    const conn = this.#conn;
    if (!conn) throw new Error(`read-only connection to ${this.path} is closed`);
    if (!sql.trim()) throw new QuerySqlError("empty SQL statement");
    if (!sql.replace(/--[^\n]*|\/\*[\s\S]*?\*\/|[;\s]/g, "")) {
      throw new QuerySqlError("no SQL statement (only comments or semicolons)");
    }
    let extracted;
    try {
      extracted = await conn.extractStatements(sql);
    } catch (e) {
      throw mapError(e, 1, 1);
    }
    const n = extracted.count;
    if (n === 0) throw new QuerySqlError("no SQL statement (only comments or semicolons)");
    if (params && n > 1) throw new QuerySqlError(`parameters bind a single statement, got ${n}`);
    // Prepare and check every statement before running any: a refused one stops the whole call.
    const prepared = [];
    for (let i = 0; i < n; i++) {
      let p;
      try {
        p = await extracted.prepare(i);
      } catch (e) {
        throw mapError(e, i + 1, n);
      }
      if (!ALLOWED.has(p.statementType)) {
        const type = StatementType[p.statementType] ?? String(p.statementType);
        throw new QueryRefusedError(
          `refused ${n > 1 ? `statement ${i + 1} of ${n} ` : ""}(${type}): ${refusal(p.statementType)}; ` +
            `nothing was run. ${HELP}`,
        );
      }
      prepared.push(p);
    }
    const out: StatementResult[] = [];
    for (const [i, p] of prepared.entries()) {
      if (params) p.bind(params);
      try {
        out.push({
          index: i + 1,
          type: StatementType[p.statementType],
          result: toQueryResult(await p.runAndReadAll()),
        });
      } catch (e) {
        throw mapError(e, i + 1, n);
      }
    }
    return out;
  }

  close(): void {
    this.#conn?.closeSync();
    this.#instance?.closeSync();
    this.#conn = null;
    this.#instance = null;
  }
}

/**
 * Opens `<resultsDir>/results.duckdb` read-only, with file access limited to `resultsDir` and the
 * configuration locked. Works on a read-only results folder. Rejects when the database does not exist
 * yet (with how to create it), is locked by a writer past the timeout, or is corrupt (StoreCorruptError).
 */
export async function openReadOnly(resultsDir: string, opts: ReadOnlyOptions = {}): Promise<ReadOnlyDb> {
  let dir = resolve(resultsDir);
  try {
    dir = Deno.realPathSync(dir); // DuckDB compares real paths
  } catch { /* missing: createInstance reports the missing database */ }
  const path = resolve(opts.db ?? `${dir}/results.duckdb`);
  const instance = await createInstance(path, true, opts.lockTimeoutMs ?? 30_000);
  let conn: DuckDBConnection | null = null;
  try {
    conn = await instance.connect();
    await checkSchemaVersion(conn, path);
    await conn.run(
      `SET allowed_directories = [${sqlQuote(`${dir}/`)}]; SET autoinstall_known_extensions = false; ` +
        "SET autoload_known_extensions = false; SET enable_external_access = false; SET lock_configuration = true",
    );
  } catch (e) {
    conn?.closeSync();
    instance.closeSync();
    throw e;
  }
  return new ReadOnlyConnection(path, dir, instance, conn);
}

/** Opens the results folder read-only, runs `sql` (every statement, see {@link ReadOnlyDb.run}) and closes. */
export async function queryReadOnly(
  resultsDir: string,
  sql: string,
  opts: ReadOnlyOptions & { params?: Record<string, DuckDBValue> } = {},
): Promise<StatementResult[]> {
  const db = await openReadOnly(resultsDir, opts);
  try {
    return await db.run(sql, opts.params);
  } finally {
    db.close();
  }
}
