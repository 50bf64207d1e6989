/**
 * `deno task exp <id>`: plan -> train (cached) -> store -> summary -> plots, through the API (lib/api/mod.ts);
 * this module parses nothing and computes nothing: it prints.
 *
 * @module
 */
import { stringify as toYaml } from "yaml";
import type { BackendName } from "../core/config.ts";
import type { Plan } from "../runner/plan.ts";
import { markInterrupted } from "../runner/execute.ts";
import { isFinished } from "../runner/cache.ts";
import { isLocked } from "../runner/lock.ts";
import type { ProjectPaths } from "../util/paths.ts";
import * as finelab from "../api/mod.ts";
import { progressFactory } from "./progress.ts";

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

/** Runs the `exp` command. Exit code: 0 ok, 1 a run failed or --verify found a difference, 2 bad input. */
export async function cmdExp(id: string, o: ExpOptions): Promise<void> {
  const t0 = performance.now();
  const { paths } = o;
  const plan = await finelab.plan(id, { paths, scale: o.scale, set: o.set, config: o.config, backend: o.backend });
  if (o.explain) return printExplain(plan);
  if (o.dryRun) return await printPlan(plan);
  console.error(`backend: ${plan.backend.name} (${plan.backend.reason})`);

  const onSignal = () => {
    markInterrupted();
    console.error("\ninterrupted: the run is marked interrupted; run the same command again to resume it");
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let result: finelab.RunResult;
  try {
    result = await finelab.run(plan, {
      paths,
      force: o.force,
      plot: o.plot !== false,
      progress: progressFactory({ plain: o.plain }),
      print: (t) => console.log(t),
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  const { outcomes, plots } = result;
  const counts: Record<string, number> = {};
  for (const x of outcomes) counts[x.action] = (counts[x.action] ?? 0) + 1;
  console.log(
    `${plan.runs.length} runs: ${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ")}; ` +
      `results in ${paths.db}${plots.length ? `; plots in ${paths.plots}/${id}/` : ""} ` +
      `(${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  const failed = outcomes.filter((x) => x.record.summary?.status === "failed");
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
    const results = await finelab.verify(plan, { paths, progress: progressFactory({ plain: o.plain }) });
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
  if (failed.length) Deno.exitCode = 1;
}
