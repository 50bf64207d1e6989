/**
 * The `exp` command's Slurm side: `--executor slurm` (submit), `--status`, `--watch`, `--cancel`, and the
 * collect job's `--collect <submission>`.
 *
 * @module
 */
import cliProgress from "cli-progress";
import type { Experiment } from "../../experiment/define.ts";
import type { Overrides } from "../../experiment/expand.ts";
import type { Plan } from "../../runner/plan.ts";
import type { RunOutcome } from "../../runner/execute.ts";
import { readRecord } from "../../runner/cache.ts";
import type { ProjectPaths } from "../../util/paths.ts";
import { SlurmError } from "./commands.ts";
import { mergeSettings, type SlurmSettings } from "./settings.ts";
import { readSubmissions, type Submission, submissionDir, submitSweep } from "./submit.ts";
import {
  cancelSubmissions,
  type CollectResult,
  formatStatus,
  latestSubmission,
  type SubmissionStatus,
  submissionStatus,
  watchSubmission,
} from "./status.ts";

/** Options of {@link slurmSubmit}. */
export interface SubmitCliOptions {
  paths: ProjectPaths;
  overrides: Overrides;
  /** The experiment module (its `slurm` settings come first). */
  module: Experiment;
  /** Parsed --config files (their `slurm:` keys come next). */
  files: { path: string; slurm?: unknown }[];
  /** Command-line settings (last). */
  cli?: SlurmSettings;
  watch?: boolean;
  plain?: boolean;
}

/** `exp <id> --executor slurm`: submits the plan and prints what was submitted (then follows it with --watch). */
export async function slurmSubmit(plan: Plan, o: SubmitCliOptions): Promise<void> {
  const settings = mergeSettings([
    { where: `experiment ${plan.experiment.id} slurm`, value: (o.module as { slurm?: unknown }).slurm },
    ...o.files.map((f) => ({ where: `--config ${f.path} slurm`, value: f.slurm })),
    { where: "command line", value: o.cli },
  ]);
  const sub = await submitSweep(plan, { paths: o.paths, overrides: o.overrides, settings });
  const n = sub.arrays.reduce((a, x) => a + x.hashes.length, 0);
  console.log(
    `submitted ${plan.experiment.id} (scale ${plan.scale}, backend ${plan.backend.name}) as ${sub.id}: ` +
      `${n} runs in ${sub.arrays.length} job arrays (${sub.arrays.map((a) => a.job_id).join(", ") || "none"}), ` +
      `${sub.cached.length} cached, ${
        Object.keys(sub.in_flight).length
      } in flight elsewhere; collect job ${sub.collect}`,
  );
  console.log(
    `follow it: deno task exp ${plan.experiment.id} --watch   (status: --status, stop it: --cancel; logs in ` +
      `${submissionDir(o.paths, sub.id)}/logs)`,
  );
  if (o.watch) await follow(o.paths, sub, o.plain);
}

async function follow(paths: ProjectPaths, sub: Submission, plain?: boolean): Promise<void> {
  const tty = !plain && Deno.stderr.isTerminal();
  const bar = tty
    ? new cliProgress.SingleBar({
      format: `${sub.experiment} {bar} {value}/{total} runs | {info}`,
      barsize: 30,
      hideCursor: true,
    })
    : null;
  let last = "";
  const info = (st: SubmissionStatus) => {
    const by: Record<string, number> = {};
    for (const r of st.runs) by[r.slurm] = (by[r.slurm] ?? 0) + 1;
    return `${
      Object.entries(by).map(([k, v]) => `${v} ${k.toLowerCase()}`).join(", ")
    }; collect ${st.collect.slurm.toLowerCase()}`;
  };
  const st = await watchSubmission(paths, sub, {
    draw: (done, total, st) => {
      if (bar) {
        if (!bar.isActive) bar.start(total, done, { info: info(st) });
        bar.update(done, { info: info(st) });
      } else {
        const line = `${sub.experiment}: ${done}/${total} runs finished | ${info(st)}`;
        if (line !== last) console.error(last = line);
      }
    },
  });
  bar?.stop();
  console.log(formatStatus(st));
  if (!st.collect.result || st.collect.result.exit_code !== 0 || st.errors.length) Deno.exitCode = 1;
}

/** `exp <id> --status` (and `--watch`): the newest submission's runs, jobs and states. */
export async function slurmStatus(id: string, o: { paths: ProjectPaths; watch?: boolean; plain?: boolean }) {
  const sub = await latestSubmission(o.paths, id);
  if (!sub) {
    throw new SlurmError(
      `experiment ${id} has no Slurm submission in ${o.paths.results}/slurm; submit one with ` +
        `\`deno task exp ${id} --executor slurm\` (FINELAB_RESULTS must name the same results folder)`,
    );
  }
  if (o.watch) return await follow(o.paths, sub, o.plain);
  console.log(formatStatus(await submissionStatus(o.paths, sub)));
}

/** `exp <id> --cancel`: cancels every live job of the experiment's submissions. */
export async function slurmCancel(id: string, paths: ProjectPaths): Promise<void> {
  const subs = await readSubmissions(paths, id);
  if (!subs.length) throw new SlurmError(`experiment ${id} has no Slurm submission in ${paths.results}/slurm`);
  const ids = await cancelSubmissions(paths, id);
  console.log(
    ids.length
      ? `cancelled ${ids.length} jobs of ${id}: ${ids.join(", ")} (checkpoints are kept: resubmitting resumes them)`
      : `nothing of ${id} is queued or running`,
  );
}

/** The collect job's view of a submission: its record and, once planned, the outcomes found in the cache. */
export async function collectOutcomes(id: string, submission: string, paths: ProjectPaths) {
  const sub = (await readSubmissions(paths, id)).find((s) => s.id === submission);
  if (!sub) throw new SlurmError(`no submission ${submission} of experiment ${id} in ${paths.results}/slurm`);
  return {
    submission: sub,
    /** Every run of the plan that has a record (missing ones are reported by {@link writeCollected}). */
    async outcomes(plan: Plan): Promise<RunOutcome[]> {
      const out: RunOutcome[] = [];
      for (const run of plan.runs) {
        const record = await readRecord(run.paths).catch(() => null);
        if (record?.summary) out.push({ run, action: "cached", record });
        else console.error(`collect: ${run.run_id} (${run.hash.slice(0, 12)}) has no result: not ingested`);
      }
      return out;
    },
  };
}

/** Writes the collect job's result (what --watch waits for); exit code 1 when a run is missing or failed. */
export async function writeCollected(paths: ProjectPaths, submission: string, plan: Plan, outcomes: RunOutcome[]) {
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
  if (exit_code) Deno.exitCode = 1;
}
