/**
 * The `exp` command's Slurm side as the user sees it: what `--executor slurm` submitted (the API submits),
 * `--status`, `--watch` (a progress bar) and `--cancel` over lib/executor/slurm.
 *
 * @module
 */
import cliProgress from "cli-progress";
import type { Plan } from "../api/mod.ts";
import type { ProjectPaths } from "../util/paths.ts";
import { SlurmError } from "../executor/slurm/commands.ts";
import { readSubmissions, type Submission, submissionDir } from "../executor/slurm/submit.ts";
import {
  cancelSubmissions,
  formatStatus,
  latestSubmission,
  type SubmissionStatus,
  submissionStatus,
  watchSubmission,
} from "../executor/slurm/status.ts";

/** `exp <id> --executor slurm`: prints what was submitted (then follows it with --watch). */
export async function printSubmission(
  plan: Plan,
  sub: Submission,
  o: { paths: ProjectPaths; watch?: boolean; plain?: boolean },
): Promise<void> {
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
