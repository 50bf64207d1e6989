/**
 * Commands over the results database: `query`, `plot`, `db rebuild`, `runs`. Each calls the API
 * (lib/api/mod.ts) and prints.
 *
 * @module
 */
import { formatResult, type OutputFormat } from "../store/format.ts";
import type { QueryResult } from "../store/result.ts";
import type { RunsRow } from "../runner/runs.ts";
import { QueryRefusedError, QuerySqlError, type ReadOnlyDb } from "../store/readonly.ts";
import type { QueryParam } from "../store/mod.ts";
import type { ProjectPaths } from "../util/paths.ts";
import * as finelab from "../api/mod.ts";
import { UserError } from "./errors.ts";

const QUERY_HELP = "Tables: experiments, runs, current_runs, metrics, run_metrics; " +
  '`deno task query "DESCRIBE runs"` lists the columns of runs; see README "Results database".';

/** Opens the results folder read-only (see lib/runner/results.ts); no results at all is a UserError. */
async function openForReading(paths: ProjectPaths): Promise<ReadOnlyDb> {
  // Loaded here, not at the top: `runs` needs neither the pipeline's results module nor the planner and plots.
  const { NoResultsError, openForReading: openResultsForReading } = await import("../runner/results.ts");
  try {
    return await openResultsForReading(paths);
  } catch (e) {
    if (e instanceof NoResultsError) throw new UserError(e.message);
    throw e;
  }
}

/**
 * `query`: runs SQL on a read-only connection (see lib/store/readonly.ts) and prints each statement's rows;
 * with several statements each result follows a `-- statement i of n` line. A refused statement or bad SQL is a
 * UserError (exit 2) and nothing runs.
 */
export async function cmdQuery(sql: string, opts: { format: OutputFormat; paths: ProjectPaths }): Promise<void> {
  if (!sql.trim()) {
    throw new UserError(
      `empty SQL statement. Pass one, e.g. deno task query "SELECT run_id, val_ppl FROM runs"; ${QUERY_HELP}`,
    );
  }
  const db = await openForReading(opts.paths);
  let results;
  try {
    results = await db.run(sql);
  } catch (e) {
    if (e instanceof QueryRefusedError) throw new UserError(e.message);
    if (e instanceof QuerySqlError) {
      throw new UserError(`${e.message}\nFix the SQL statement and run again. ${QUERY_HELP}`);
    }
    throw e;
  } finally {
    db.close();
  }
  for (const r of results) {
    if (results.length > 1) console.log(`-- statement ${r.index} of ${results.length} (${r.type})`);
    console.log(formatResult(r.result, opts.format));
  }
}

/**
 * `plot <id>`: redraws the experiment's plots from the database, into `out` (default results/plots/<id>/).
 * Reads through a read-only connection, so it works on a read-only results folder with `out` elsewhere.
 */
export async function cmdPlot(id: string, opts: { paths: ProjectPaths; out?: string }): Promise<void> {
  const { loadExperiment } = await import("../runner/plan.ts");
  const { plotExperiment } = await import("../plot/mod.ts");
  // loadExperiment validates the id with a helpful error.
  const { exp } = await loadExperiment(id, opts.paths);
  const outDir = opts.out ?? `${opts.paths.plots}/${id}`;
  const db = await openForReading(opts.paths);
  const files: string[] = [];
  try {
    const store = {
      query: async (sql: string, params?: Record<string, QueryParam>) => (await db.run(sql, params))[0].result,
    };
    const n = await store.query("SELECT count(*)::INTEGER AS n FROM runs WHERE experiment = $id", { id });
    if (n.rows[0].n !== 0) {
      files.push(...await plotExperiment(store, id, outDir));
      const report = exp.report;
      if (report) {
        files.push(
          ...await report({
            experiment: id,
            variants: exp.variants ?? { base: {} },
            query: store.query,
            plotDir: outDir,
            print: () => {},
          }),
        );
      }
    }
  } finally {
    db.close();
  }
  if (files.length === 0) {
    throw new UserError(`no results for ${id} in ${opts.paths.db}; run \`deno task exp ${id}\` first, then plot again`);
  }
  for (const f of files) console.log(f);
}

/** `db rebuild`: recreates the database from the run cache (the source of truth). */
export async function cmdDb(action: string, opts: { paths: ProjectPaths }): Promise<void> {
  if (action === "path") return console.log(opts.paths.db);
  const t0 = performance.now();
  const r = await finelab.rebuild({ paths: opts.paths });
  console.log(
    `rebuilt ${opts.paths.db} from ${opts.paths.cache}: ${r.runs} runs, ${r.metrics} metric rows` +
      `${r.corrupt.length ? `, ${r.corrupt.length} corrupt entries left out` : ""} ` +
      `(${((performance.now() - t0) / 1000).toFixed(2)} s)`,
  );
}

/** Rows `runs` shows in the `table` and `md` formats unless --limit or --all says otherwise. */
export const RUNS_DEFAULT_LIMIT = 50;

/** Statuses in the order the footer of `runs` counts them (others follow by name). */
const STATUS_ORDER = ["running", "queued", "interrupted", "corrupt", "failed", "diverged", "completed"];

/** The footer of a cut `runs` table: how many are shown, the counts by status, and how to see the rest. */
export function runsFooter(shown: number, total: number, counts: Record<string, number>): string {
  const rank = (s: string) => (STATUS_ORDER.includes(s) ? STATUS_ORDER.indexOf(s) : STATUS_ORDER.length);
  const statuses = Object.keys(counts).filter((s) => counts[s] > 0)
    .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  return `(${shown} of ${total} runs, newest first; ${statuses.map((s) => `${counts[s]} ${s}`).join(", ")}; ` +
    `--limit <n> or --all for more)`;
}

/**
 * `runs`: lists cache entries and their live status (a `running` run whose process died is interrupted), newest
 * first; finished runs as the database holds them, or with `verify` as every entry's files are now (checksums).
 * The `table` and `md` formats show the newest {@link RUNS_DEFAULT_LIMIT} unless `limit` or `all` is given (a
 * table's footer, or a line on stderr, says how many are hidden); `csv` and `json` show every row unless `limit` is.
 */
export async function cmdRuns(
  opts: {
    experiment?: string;
    format?: OutputFormat;
    verify?: boolean;
    limit?: number;
    all?: boolean;
    paths: ProjectPaths;
    /** Where the listing goes, a line at a time as console.log would print it (default: stdout, in one write). */
    print?: (text: string) => void;
  },
): Promise<void> {
  const print = opts.print ?? writeStdout;
  const format = opts.format ?? "table";
  if (opts.all && opts.limit !== undefined) throw new UserError("runs: pass --limit <n> or --all, not both");
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 1)) {
    throw new UserError(`runs: --limit ${opts.limit}: expected an integer >= 1`);
  }
  const human = format === "table" || format === "md";
  const limit = opts.all ? Infinity : opts.limit ?? (human ? RUNS_DEFAULT_LIMIT : Infinity);
  const { runsListing } = await import("../runner/runs.ts");
  const l = await runsListing(opts.paths, { experiment: opts.experiment, verify: opts.verify, limit });
  const columns: (keyof RunsRow)[] = [
    "experiment",
    "run_id",
    "hash",
    "status",
    "step",
    "steps",
    "val_ppl",
    "heartbeat",
    "attempts",
    "tags",
    "note",
  ];
  const types: Partial<Record<keyof RunsRow, string>> = {
    step: "INTEGER",
    steps: "INTEGER",
    val_ppl: "DOUBLE",
    attempts: "INTEGER",
  };
  const result = {
    columns: columns.map((name) => ({ name, type: types[name] ?? "VARCHAR" })),
    rows: l.rows, // every column is a field of each row (the formats read them by name, `undefined` as NULL)
  } as unknown as QueryResult;
  let text = formatResult(result, format);
  if (l.rows.length < l.total) {
    const footer = runsFooter(l.rows.length, l.total, l.counts);
    if (format === "table") text = text.replace(/\(\d+ rows?\)\n$/, `${footer}\n`);
    else console.error(footer);
  }
  print(text);
}

/** Writes `text` and a newline to stdout as console.log does, in one write (console.log takes 0.1 s per 10 MB). */
function writeStdout(text: string): void {
  const bytes = new TextEncoder().encode(`${text}\n`);
  for (let off = 0; off < bytes.length;) off += Deno.stdout.writeSync(bytes.subarray(off));
}
