/**
 * Commands over the results database: `query`, `plot`, `db rebuild`, `runs`, and the
 * store/plot/summary steps that end `exp`.
 *
 * @module
 */
import { relative } from "node:path";
import { type ExperimentRow, openStore, rebuildStore, type Store } from "../store/mod.ts";
import { formatResult, type OutputFormat } from "../store/format.ts";
import { plotExperiment } from "../plot/mod.ts";
import { entryPaths, listRecords } from "../runner/cache.ts";
import { isLocked } from "../runner/lock.ts";
import { listExperiments, loadExperiment, type Plan } from "../runner/plan.ts";
import type { RunRecord } from "../runner/records.ts";
import type { ProjectPaths } from "../util/paths.ts";
import { atomicWriteJson, readJsonOrNull } from "../util/fs.ts";
import { UserError } from "./errors.ts";

/** The `experiments` row for a plan, with the plan's runs (what `current_runs` shows). */
export function experimentRow(plan: Plan, paths: ProjectPaths): ExperimentRow {
  return {
    id: plan.experiment.id,
    description: plan.experiment.description,
    module: relative(paths.root, plan.modulePath),
    n_runs: plan.runs.length,
    updated_at: new Date().toISOString(),
    plan: { scale: plan.scale, runs: plan.runs.map((r) => ({ hash: r.hash, run_id: r.run_id })) },
  };
}

/** Where the latest plan of each experiment is kept (part of the cache, so `db rebuild` restores it). */
function planFile(paths: ProjectPaths, id: string): string {
  return `${paths.cache}/plans/${id}.json`;
}

/** Stores the plan's records and (optionally) redraws the experiment's plots; returns the plot files. */
export async function ingestAndPlot(
  plan: Plan,
  records: RunRecord[],
  opts: { paths: ProjectPaths; experiment: ExperimentRow; plot: boolean },
): Promise<string[]> {
  await atomicWriteJson(planFile(opts.paths, plan.experiment.id), opts.experiment);
  const store = await openStore(opts.paths.db);
  try {
    await store.ingest(records, [opts.experiment]);
    if (!opts.plot) return [];
    return await plotExperiment(store, plan.experiment.id, `${opts.paths.plots}/${plan.experiment.id}`);
  } finally {
    await store.close();
  }
}

/** SQL of the per-variant summary of an experiment's current runs (also shown in the README). */
export function summarySql(experiment: string, metrics: string[]): string {
  const cols = metrics.map((m) => `avg(${m}) AS ${m}_mean, stddev_samp(${m}) AS ${m}_std`).join(",\n  ");
  return `SELECT variant, count(*) AS seeds,\n  ${cols}\nFROM current_runs\n` +
    `WHERE experiment = '${experiment.replaceAll("'", "''")}' AND status = 'completed'\n` +
    `GROUP BY variant ORDER BY ${metrics[metrics.length - 1]}_mean`;
}

/** Prints the experiment's summary table (mean and std over seeds per variant), computed in DuckDB. */
export async function printSummary(plan: Plan, paths: ProjectPaths): Promise<void> {
  const store = await openStore(paths.db);
  try {
    const metrics = plan.experiment.metrics ?? ["val_loss", "val_ppl"];
    const r = await store.query(summarySql(plan.experiment.id, metrics));
    console.log(formatResult(r, "table"));
  } finally {
    await store.close();
  }
}

/** `query`: prints the rows of a SQL statement; a bad query is a UserError carrying DuckDB's message. */
export async function cmdQuery(sql: string, opts: { format: OutputFormat; paths: ProjectPaths }): Promise<void> {
  const store = await openStore(opts.paths.db);
  try {
    let r;
    try {
      r = await store.query(sql);
    } catch (e) {
      throw new UserError(
        `${(e as Error).message}\nTables: experiments, runs, current_runs, metrics, run_metrics; ` +
          `see README "Results database".`,
      );
    }
    console.log(formatResult(r, opts.format));
  } finally {
    await store.close();
  }
}

/** `plot <id>`: redraws the experiment's plots from the database. */
export async function cmdPlot(id: string, opts: { paths: ProjectPaths }): Promise<void> {
  await loadExperiment(id, opts.paths); // validates the id with a helpful error
  const store = await openStore(opts.paths.db);
  try {
    const files = await plotExperiment(store, id, `${opts.paths.plots}/${id}`);
    if (files.length === 0) {
      throw new UserError(`no results for ${id} in ${opts.paths.db}; run \`deno task exp ${id}\` first`);
    }
    for (const f of files) console.log(f);
  } finally {
    await store.close();
  }
}

async function experimentRows(records: RunRecord[], paths: ProjectPaths): Promise<ExperimentRow[]> {
  const ids = new Set(records.map((r) => r.manifest.experiment));
  const known = new Set(await listExperiments(paths));
  const rows: ExperimentRow[] = [];
  for (const id of ids) {
    const saved = await readJsonOrNull<ExperimentRow>(planFile(paths, id));
    if (saved) {
      rows.push(saved);
      continue;
    }
    let description = "", module = "";
    if (known.has(id)) {
      try {
        const { exp, modulePath } = await loadExperiment(id, paths);
        description = exp.description;
        module = relative(paths.root, modulePath);
      } catch { /* module broken: keep the runs anyway */ }
    }
    rows.push({ id, description, module, n_runs: records.filter((r) => r.manifest.experiment === id).length });
  }
  return rows;
}

/** `db rebuild`: recreates the database from the run cache (the source of truth). */
export async function cmdDb(action: string, opts: { paths: ProjectPaths }): Promise<void> {
  if (action === "path") return console.log(opts.paths.db);
  const t0 = performance.now();
  const records = await listRecords(opts.paths.cache);
  await rebuildStore(opts.paths.db, { records, experiments: await experimentRows(records, opts.paths) });
  const metrics = records.reduce((a, r) => a + r.metrics.length, 0);
  console.log(
    `rebuilt ${opts.paths.db} from ${opts.paths.cache}: ${records.length} runs, ${metrics} metric rows ` +
      `(${((performance.now() - t0) / 1000).toFixed(2)} s)`,
  );
}

/** `runs`: lists cache entries and their status; a `running` run whose lock is free is shown as interrupted. */
export async function cmdRuns(opts: { experiment?: string; paths: ProjectPaths }): Promise<void> {
  const records = (await listRecords(opts.paths.cache))
    .filter((r) => !opts.experiment || r.manifest.experiment === opts.experiment);
  const rows = records.map((r) => {
    let status: string = r.status.status;
    if (status === "running" && !isLocked(entryPaths(opts.paths.cache, r.manifest.hash).lock)) status = "interrupted";
    return {
      experiment: r.manifest.experiment,
      run_id: r.manifest.run_id,
      hash: r.manifest.hash.slice(0, 12),
      status,
      step: r.summary?.steps_done ?? r.status.step,
      steps: r.manifest.config.train.steps,
      val_ppl: r.summary?.val_ppl ?? null,
      finished_at: r.status.finished_at,
    };
  });
  const columns = ["experiment", "run_id", "hash", "status", "step", "steps", "val_ppl", "finished_at"];
  console.log(formatResult(
    {
      columns: columns.map((name) => ({ name, type: name === "val_ppl" ? "DOUBLE" : "VARCHAR" })),
      rows: rows.map((r) => Object.fromEntries(columns.map((c) => [c, (r as Record<string, unknown>)[c] ?? null]))),
    } as unknown as Parameters<typeof formatResult>[0],
    "table",
  ));
}

export type { Store };
