/**
 * The Slurm executor as the API (lib/api) uses it: submit a plan as job arrays (settings merged from the
 * experiment module, `--config` files and the caller, in that order), and the collect job's side (the
 * outcomes a submission left in the cache; its `collected.json`). Status, watch and cancel are in
 * status.ts.
 *
 * @module
 */
import type { Overrides } from "../../experiment/expand.ts";
import type { Plan } from "../../runner/plan.ts";
import type { RunOutcome } from "../../runner/execute.ts";
import { readRecord } from "../../runner/cache.ts";
import type { ProjectPaths } from "../../util/paths.ts";
import { SlurmError } from "./commands.ts";
import { mergeSettings, type SlurmSettings } from "./settings.ts";
import { readSubmissions, type Submission, submissionDir, submitSweep } from "./submit.ts";
import type { CollectResult } from "./status.ts";

export { SlurmError } from "./commands.ts";
export type { SlurmSettings } from "./settings.ts";
export type { Submission } from "./submit.ts";

/** Options of {@link submitPlan}. */
export interface SubmitPlanOptions {
  paths: ProjectPaths;
  overrides: Overrides;
  /** Parsed --config files (their `slurm:` keys come after the experiment module's). */
  files: { path: string; slurm?: unknown }[];
  /** The caller's settings (last). */
  settings?: SlurmSettings;
}

/** Submits a plan's runs as Slurm job arrays (one per dependency level) plus a collect job. */
export function submitPlan(plan: Plan, o: SubmitPlanOptions): Promise<Submission> {
  const settings = mergeSettings([
    { where: `experiment ${plan.experiment.id} slurm`, value: (plan.experiment as { slurm?: unknown }).slurm },
    ...o.files.map((f) => ({ where: `--config ${f.path} slurm`, value: f.slurm })),
    { where: "command line", value: o.settings },
  ]);
  return submitSweep(plan, { paths: o.paths, overrides: o.overrides, settings });
}

/** The submission `submission` of experiment `id` (a SlurmError when there is none). */
export async function findSubmission(id: string, submission: string, paths: ProjectPaths): Promise<Submission> {
  const sub = (await readSubmissions(paths, id)).find((s) => s.id === submission);
  if (!sub) throw new SlurmError(`no submission ${submission} of experiment ${id} in ${paths.results}/slurm`);
  return sub;
}

/**
 * The collect job's outcomes: every run of the plan that has a record in the cache; the runs without one
 * are reported through `log` (and by {@link writeCollected}).
 */
export async function collectOutcomes(plan: Plan, log: (m: string) => void): Promise<RunOutcome[]> {
  const out: RunOutcome[] = [];
  for (const run of plan.runs) {
    const record = await readRecord(run.paths).catch(() => null);
    if (record?.summary) out.push({ run, action: "cached", record });
    else log(`collect: ${run.run_id} (${run.hash.slice(0, 12)}) has no result: not ingested`);
  }
  return out;
}

/** Writes the collect job's result (what --watch waits for); returns its exit code (1: a run is missing or failed). */
export async function writeCollected(
  paths: ProjectPaths,
  submission: string,
  plan: Plan,
  outcomes: RunOutcome[],
): Promise<number> {
  const failed = outcomes.filter((x) => x.record.summary?.status === "failed").length;
  const miss = plan.runs.filter((r) => !outcomes.some((x) => x.run.hash === r.hash)).map((r) => r.run_id);
  const exit_code = failed || miss.length ? 1 : 0;
  const sub = (await readSubmissions(paths)).find((s) => s.id === submission)!;
  const result: CollectResult = {
    at: new Date().toISOString(),
    completed: outcomes.length - failed,
    failed,
    missing: miss,
    exit_code,
  };
  const path = `${submissionDir(paths, sub.id)}/collected.json`;
  await Deno.writeTextFile(`${path}.tmp`, JSON.stringify(result, null, 2) + "\n");
  await Deno.rename(`${path}.tmp`, path);
  return exit_code;
}
