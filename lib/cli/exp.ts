/**
 * `deno task exp <id>`: parses nothing itself (lib/cli/main.ts does) and prints; the pipeline (plan -> train
 * (cached) -> store -> summary -> plots -> report, or a Slurm submission) is the library API's (lib/api).
 *
 * @module
 */
import * as finelab from "../api/mod.ts";
import type { BackendName, Plan, RunOutcome, SlurmSettings } from "../api/mod.ts";
import type { ProjectPaths } from "../util/paths.ts";
import { UserError } from "./errors.ts";

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
  /** Tag the runs (recorded with them; not the experiment's declared results). */
  tag?: string;
}

/** `--dry-run`: the plan's runs and where each stands (from the request's memo when nothing changed). */
function printPlan({ plan, runs, rows }: finelab.Preview): void {
  console.log(`${plan.experiment} (scale ${plan.scale}, backend ${plan.backend.name}): ${runs} runs`);
  for (const r of rows) {
    console.log(`  ${r.label.padEnd(28)} ${r.hash.slice(0, 16)}  ${r.state}${r.from ? `  from ${r.from}` : ""}`);
  }
}

async function printExplain(plan: Plan): Promise<void> {
  const { stringify: toYaml } = await import("yaml");
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
  if (o.status || o.watch && o.executor !== "slurm" || o.cancel) {
    await finelab.experiment(id, { paths }); // validates the id with a helpful error
    const { slurmCancel, slurmStatus } = await import("./slurm.ts");
    if (o.cancel) return await slurmCancel(id, paths);
    return await slurmStatus(id, { paths, watch: o.watch, plain: o.plain });
  }
  const slurm = o.executor === "slurm" && !o.collect;
  if (slurm && (o.force || o.verify || o.tag !== undefined)) {
    const flag = o.force ? "--force" : o.verify ? "--verify" : "--tag";
    throw new UserError(
      `${flag} is not supported with --executor slurm: ${
        o.tag !== undefined && !o.force && !o.verify
          ? "tag the runs once collected"
          : "it retrains runs on this machine"
      }. Drop it, or run without --executor slurm.`,
    );
  }
  if (o.tag !== undefined) {
    try {
      finelab.checkTag(o.tag);
    } catch (e) {
      if (e instanceof finelab.TagError) throw new UserError(`--tag: ${e.message}`);
      throw e;
    }
  }
  const request: finelab.PlanOptions = {
    paths,
    scale: o.scale,
    set: o.set,
    config: o.config,
    backend: o.backend,
    submission: o.collect,
  };
  const print = (t: string) => console.log(t);
  // Nothing changed since the same command last planned or completed: answer from its memo (lib/api/noop.ts)
  // before loading anything else (progress bars included).
  if (o.dryRun && !o.explain) {
    const memo = await finelab.preview(id, { ...request, memoOnly: true });
    if (memo) return printPlan(memo);
  }
  const again = slurm || o.explain || o.dryRun ? null : await finelab.rerun(id, { ...request, ...o, print });
  if (again) {
    for (const line of backendLines(again.plan.backend)) console.error(line);
    const runs = again.plan.runs.filter((r) => !r.dependency).length;
    return printOutcome({ id, runs, declared: again.declared, plots: again.plots, outcomes: [] }, {
      paths,
      t0,
      tag: o.tag,
      counts: { cached: runs },
    });
  }
  const { progressBar, progressFactory } = await import("./progress.ts");
  const bar = progressBar({ plain: o.plain });
  request.data = {
    progress: bar,
    log: (m) => m.startsWith("data: built") || m.startsWith("data: trained") ? console.error(m) : {},
  };
  if (o.dryRun && !o.explain) return printPlan(await finelab.preview(id, request).finally(() => bar.stop()));
  const plan = await finelab.plan(id, request).finally(() => bar.stop());
  if (o.explain) return await printExplain(plan);
  if (slurm) {
    const sub = await finelab.submit(plan, { paths, slurm: o.slurm });
    const { printSubmission } = await import("./slurm.ts");
    return await printSubmission(plan, sub, { paths, watch: o.watch, plain: o.plain });
  }
  for (const line of backendLines(plan.backend)) console.error(line);

  // The main thread's handler, and a watchdog that acts when a blocked step keeps it from running.
  const unguard = finelab.guardSignals(() => {
    finelab.markInterrupted();
    console.error("\ninterrupted: the run is marked interrupted; run the same command again to resume it");
    Deno.exit(finelab.INTERRUPTED_EXIT);
  });
  let result: finelab.RunResult;
  try {
    result = await finelab.run(plan, {
      paths,
      force: o.force,
      memoryCheck: o.memoryCheck,
      plot: o.plot,
      verify: o.verify,
      collect: o.collect,
      tag: o.tag,
      progress: progressFactory({ plain: o.plain }),
      print,
    });
  } catch (e) {
    if (e instanceof finelab.MemoryError) throw new UserError(e.message);
    throw e;
  } finally {
    unguard();
  }
  const { outcomes, declared, plots, verified, collected } = result;
  printOutcome({ id, runs: plan.runs.length, outcomes, declared, plots, verified, collected }, {
    paths,
    t0,
    tag: o.tag,
  });
}

/** What {@link printOutcome} reports. */
interface Outcome extends Pick<finelab.RunResult, "declared" | "plots" | "verified" | "collected"> {
  id: string;
  runs: number;
  outcomes: RunOutcome[];
}

/** Prints what {@link cmdExp}'s run did: the last line, failed and diverged runs, --verify; sets the exit code. */
function printOutcome(
  result: Outcome,
  o: { paths: ProjectPaths; t0: number; tag?: string; counts?: Record<string, number> },
): void {
  const { id, outcomes, plots } = result;
  const counts: Record<string, number> = { ...o.counts };
  for (const x of outcomes) counts[x.action] = (counts[x.action] ?? 0) + 1;
  if (!result.declared) {
    const how = o.tag !== undefined
      ? `tagged ${o.tag}: query them with SELECT ... FROM tagged_runs WHERE tag = '${o.tag}'`
      : "query them by hash or config columns, e.g. train_lr";
    console.log(
      `(runs ${o.tag !== undefined ? "with --tag" : "with --set/--config overrides"}: stored in runs, but ${id}'s ` +
        `current results, plots and verdict stay those of its declared plan; ${how})`,
    );
  }
  console.log(
    `${result.runs} runs: ${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ")}; ` +
      `results in ${o.paths.db}${plots.length ? `; plots in ${o.paths.plots}/${id}/` : ""} ` +
      `(${((performance.now() - o.t0) / 1000).toFixed(1)} s)`,
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
  if (result.verified) {
    const results = result.verified;
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
  if (failed.length || diverged.length || result.collected) Deno.exitCode = 1;
}
