/**
 * `deno task exp <id>`: plan -> train (cached) -> store -> summary -> plots.
 *
 * @module
 */
import { stringify as toYaml } from "yaml";
import type { BackendName } from "../core/config.ts";
import { type Overrides, readConfigFile } from "../experiment/expand.ts";
import { loadExperiment, makePlan, type Plan } from "../runner/plan.ts";
import { progressBar } from "./progress.ts";
import { executePlan, type RunOutcome, verifyPlan } from "../runner/execute.ts";
import { guardSignals } from "../runner/signal_guard.ts";
import { onInterrupt } from "./run_cmd.ts";
import { isFinished, readRecord } from "../runner/cache.ts";
import { isLocked } from "../runner/lock.ts";
import type { ProjectPaths } from "../util/paths.ts";
import { progressFactory } from "./progress.ts";
import { estimateMemory, formatBytes, machineMemory, type MemoryEstimate } from "../runner/memory.ts";
import { UserError } from "./errors.ts";
import { experimentRow, ingestRecords, summarySql, withResults } from "../runner/results.ts";
import { formatResult } from "../store/format.ts";
import * as finelab from "../api/mod.ts";
import { writeRunRequests } from "../runner/run_one.ts";
import type { SlurmSettings } from "../executor/slurm/settings.ts";
import { SlurmError } from "../executor/slurm/commands.ts";
import { collectOutcomes, slurmCancel, slurmStatus, slurmSubmit, writeCollected } from "../executor/slurm/cli.ts";

/** Options of `exp`. */
export interface ExpOptions {
  paths: ProjectPaths;
  scale?: string;
  set?: string[];
  config?: string[];
  backend?: BackendName;
  force?: boolean;
  verify?: boolean;
  explain?: boolean;
  dryRun?: boolean;
  plot?: boolean;
  plain?: boolean;
  /** Where runs train: here (default) or as Slurm job arrays (lib/executor/slurm). */
  executor?: "local" | "slurm";
  /** Slurm settings from the command line (the experiment module's and --config files' come first). */
  slurm?: SlurmSettings;
  /** Slurm: follow the submission until collected; show its status; cancel it. */
  watch?: boolean;
  status?: boolean;
  cancel?: boolean;
  /** Slurm's collect job: ingest and report what this submission trained; trains nothing. */
  collect?: string;
  /** false: skip the memory estimate (`--no-memory-check`). */
  memoryCheck?: boolean;
}

/**
 * Refuses a plan whose largest run to train would not fit in the machine's available memory, with the
 * estimate and the machine's memory (before anything is allocated).
 */
async function checkMemory(plan: Plan): Promise<void> {
  const mem = machineMemory();
  if (!mem) return;
  let worst: { run: Plan["runs"][number]; est: MemoryEstimate } | null = null;
  for (const run of [...plan.dependencies, ...plan.runs]) {
    if (await isFinished(run.paths)) continue;
    const est = await estimateMemory(run.config);
    if (!worst || est.total > worst.est.total) worst = { run, est };
  }
  if (!worst || worst.est.total <= mem.available) return;
  const { run, est } = worst;
  throw new UserError(
    `run ${run.run_id} would need about ${formatBytes(est.total)} of memory (${est.params.toExponential(2)} ` +
      `parameters: ${formatBytes(est.state)} for weights, gradients and AdamW state; ${formatBytes(est.activations)} ` +
      `of activations at batch ${run.config.train.batch_size}), but this machine has ${formatBytes(mem.available)} ` +
      `available of ${formatBytes(mem.total)}. Nothing was trained. Make the model or train.batch_size smaller, or ` +
      "pass --no-memory-check (or --force) to train it anyway.",
  );
}

async function printPlan(plan: Plan): Promise<void> {
  console.log(`${plan.experiment.id} (scale ${plan.scale}, backend ${plan.backend.name}): ${plan.runs.length} runs`);
  const state = async (r: Plan["runs"][number]) =>
    await isFinished(r.paths) ? "cached" : isLocked(r.paths.lock) ? "training elsewhere" : "to train";
  for (const d of plan.dependencies) {
    console.log(
      `  ${`(parent) ${d.config.experiment}/${d.run_id}`.padEnd(28)} ${d.hash.slice(0, 16)}  ${await state(d)}`,
    );
  }
  for (const r of plan.runs) {
    const from = r.parent ? `  from ${r.parent.config.experiment}/${r.parent.run_id}` : "";
    console.log(`  ${r.run_id.padEnd(28)} ${r.hash.slice(0, 16)}  ${await state(r)}${from}`);
  }
}

function printExplain(plan: Plan): void {
  for (const r of plan.runs) {
    console.log(`# ${r.run_id}\nhash: ${r.hash}\ninputs:`);
    console.log(
      toYaml(r.hash_inputs, { indent: 2 }).split("\n").map((l) => (l ? `  ${l}` : l)).join("\n"),
    );
  }
  console.log(
    "The hash is sha256 over the RFC 8785 canonical JSON of `inputs`. code: the trainer's import graph plus the " +
      "FFN variant module plus the experiment's own helper modules; deps: npm packages in that graph with their " +
      "deno.lock integrity; data: the dataset manifest hash.",
  );
}

/**
 * What `exp` says about the backend: its name and the first clause of why (the full reason is in every run's
 * manifest and with FINELAB_DEBUG=1), plus, once, how to get the native backend when `auto` had to skip it.
 */
export function backendLines(b: Plan["backend"]): string[] {
  let debug = false;
  try {
    debug = !!Deno.env.get("FINELAB_DEBUG");
  } catch { /* no env permission */ }
  if (debug) return [`backend: ${b.name} (${b.reason})`];
  const why = b.reason.replace(/^(auto|requested): /, "").split(/ \(|;/)[0];
  const lines = [`backend: ${b.name}${b.name === why.split(" ")[0] ? "" : ` (${why})`}`];
  if (b.name === "native") lines[0] = `backend: native (${/openblas|accelerate|blas/i.exec(b.reason)?.[0] ?? "BLAS"})`;
  if (b.reason.startsWith("requested")) lines[0] = `backend: ${b.name} (requested)`;
  const native = /native: (.*?) \(to fix: (.*?)\)(?:;|\)$)/.exec(b.reason);
  if (b.reason.startsWith("auto") && native && b.name !== "native") {
    lines.push(
      `hint: the native backend is several times faster on CPU but unavailable here (${native[1]}); ${native[2]}`,
    );
  }
  return lines;
}

/** Runs the `exp` command. Exit code: 0 ok, 1 a run failed or --verify found a difference, 2 bad input. */
export async function cmdExp(id: string, o: ExpOptions): Promise<void> {
  const t0 = performance.now();
  const { paths } = o;
  const loaded = await loadExperiment(id, paths);
  if (o.status || o.watch && o.executor !== "slurm" || o.cancel) {
    if (o.cancel) return await slurmCancel(id, paths);
    return await slurmStatus(id, { paths, watch: o.watch, plain: o.plain });
  }
  const files = [];
  for (const f of o.config ?? []) files.push(await readConfigFile(f));
  let overrides: Overrides = { files, sets: o.set ?? [], scale: o.scale, backend: o.backend };
  let collect: Awaited<ReturnType<typeof collectOutcomes>> | null = null;
  if (o.collect) {
    collect = await collectOutcomes(id, o.collect, paths);
    overrides = collect.submission.overrides;
  }
  const bar = progressBar({ plain: o.plain });
  const plan = await makePlan(loaded, {
    paths,
    overrides,
    data: {
      progress: bar,
      log: (m) => m.startsWith("data: built") || m.startsWith("data: trained") ? console.error(m) : {},
    },
  }).finally(() => bar.stop());
  if (o.explain) return printExplain(plan);
  if (o.dryRun) return await printPlan(plan);
  if (o.executor === "slurm" && !collect) {
    if (o.force || o.verify) {
      throw new SlurmError(
        `${o.force ? "--force" : "--verify"} is not supported with --executor slurm: it retrains runs on this ` +
          `machine. Drop it, or run without --executor slurm.`,
      );
    }
    return await slurmSubmit(plan, {
      paths,
      overrides,
      module: loaded.exp,
      files,
      cli: o.slurm,
      watch: o.watch,
      plain: o.plain,
    });
  }
  for (const line of backendLines(plan.backend)) console.error(line);
  if (collect) return await finishExp(plan, await collect.outcomes(plan), o, t0);
  if (o.memoryCheck !== false && !o.force) await checkMemory(plan);
  await writeRunRequests(plan, overrides, paths); // so `exp --run <hash>` can train any planned run by hand

  const unguard = guardSignals(onInterrupt);
  let outcomes: RunOutcome[];
  try {
    outcomes = await executePlan(plan, {
      paths,
      force: o.force,
      progress: progressFactory({ plain: o.plain }),
    });
  } finally {
    unguard();
  }
  await finishExp(plan, outcomes, o, t0);
}

/** Ingests the outcomes into DuckDB, prints the summary and report, draws plots, then --verify. */
async function finishExp(plan: Plan, outcomes: RunOutcome[], o: ExpOptions, t0: number): Promise<void> {
  const { paths } = o;
  const id = plan.experiment.id;
  const counts: Record<string, number> = {};
  for (const x of outcomes) counts[x.action] = (counts[x.action] ?? 0) + 1;

  // Parent runs of other experiments go into the database too (under their own experiment id).
  const parents = (await Promise.all(plan.dependencies.map((d) => readRecord(d.paths)))).filter((r) => r !== null);
  // Runs made with --set/--config are not the experiment's declared plan: they are stored, but the experiment's
  // current results (current_runs), plots and verdict stay those of its declared plan.
  const declared = !(o.set?.length || o.config?.length);
  await withResults(paths, (store) =>
    ingestRecords(store, [...outcomes.map((x) => x.record), ...parents], {
      paths,
      experiment: declared ? experimentRow(plan, paths) : null,
    }));
  const metrics = plan.experiment.metrics ?? ["val_loss", "val_ppl"];
  const hashes = declared ? undefined : plan.runs.map((r) => r.hash);
  console.log(formatResult(await finelab.query(summarySql(id, metrics, hashes), undefined, { paths }), "table"));
  const plots: string[] = [];
  if (declared) {
    // The experiment's plots and its report (table, verdict), from the database.
    plots.push(...await finelab.report(id, { paths, plot: o.plot !== false, print: (t) => console.log(t) }));
  } else {
    console.log(
      `(runs with --set/--config overrides: stored in runs, but ${id}'s current results, plots and verdict stay ` +
        `those of its declared plan; query them by hash or config columns, e.g. train_lr)`,
    );
  }
  console.log(
    `${plan.runs.length} runs: ${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ")}; ` +
      `results in ${paths.db}${plots.length ? `; plots in ${paths.plots}/${id}/` : ""} ` +
      `(${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  const failed = outcomes.filter((x) => x.record.summary?.status === "failed");
  const diverged = outcomes.filter((x) => x.record.summary?.status === "diverged");
  for (const d of diverged) {
    console.error(
      `run ${d.run.run_id} DIVERGED: ${d.record.summary!.failure?.reason}. Its results are kept (status diverged) ` +
        "but mean nothing: lower train.lr or set train.grad_clip, then run again (--force retrains it).",
    );
  }
  for (const f of failed) {
    const fl = f.record.summary!.failure;
    console.error(
      `run ${f.run.run_id} FAILED at step ${fl?.step}: ${fl?.reason} (last good loss ${
        fl?.last_good_loss ?? "n/a"
      }); ` +
        `its last good checkpoint is kept in ${f.run.paths.dir}/checkpoints. Lower train.lr or raise train.grad_clip, ` +
        `then run with --force to retrain it.`,
    );
  }

  if (o.verify) {
    console.error(`verify: retraining ${plan.runs.length} runs from scratch...`);
    const results = await verifyPlan(plan, { paths, progress: progressFactory({ plain: o.plain }) });
    let bad = 0, values = 0;
    for (const r of results) {
      values += r.compared;
      if (!r.identical) {
        bad++;
        console.log(`verify ${r.run.run_id}: DIFFERENT (${r.differences.length} of ${r.compared} values)`);
        for (const d of r.differences.slice(0, 10)) console.log(`    ${d}`);
      }
    }
    console.log(
      bad === 0
        ? `verify: ${results.length}/${results.length} runs bit-identical (${values} values compared)`
        : `verify: ${bad} of ${results.length} runs differ`,
    );
    if (bad) Deno.exitCode = 1;
  }
  if (failed.length || diverged.length) Deno.exitCode = 1;
  if (o.collect) await writeCollected(paths, o.collect, plan, outcomes);
}
