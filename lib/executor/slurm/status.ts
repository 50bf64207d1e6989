/**
 * Following a submitted sweep: each run's Slurm job and state beside finelab's own status (`--status`), a
 * progress bar until the collect job has ingested everything (`--watch`), and `--cancel`.
 *
 * @module
 */
import { entryPaths, liveStatus, readRecord } from "../../runner/cache.ts";
import type { ProjectPaths } from "../../util/paths.ts";
import { type JobState, scancel, scontrolJobs, squeue } from "./commands.ts";
import { readSubmissions, type Submission, submissionDir } from "./submit.ts";

/** One run of a submission as `--status` shows it. */
export interface SlurmRunRow {
  run_id: string;
  hash: string;
  /** `J_T`, or empty for a run that was cached or in flight elsewhere at submission. */
  job: string;
  /** Slurm's state (squeue while it lives, scontrol after), `gone` once the controller forgot it. */
  slurm: string;
  /** finelab's status of the cache entry (completed, running, interrupted, failed, missing). */
  finelab: string;
  step: number | null;
  steps: number | null;
}

/** The state of a submission. */
export interface SubmissionStatus {
  submission: Submission;
  runs: SlurmRunRow[];
  /** The collect job's state, and its result once it wrote one. */
  collect: { job: string; slurm: string; result: CollectResult | null };
  /** Last lines of the logs of tasks that ended in error (what went wrong on the node). */
  errors: string[];
}

/** What the collect job writes when it is done (`collected.json` of the submission). */
export interface CollectResult {
  at: string;
  completed: number;
  failed: number;
  missing: string[];
  exit_code: number;
}

async function states(sub: Submission): Promise<Map<string, JobState>> {
  const out = await squeue([...sub.arrays.map((a) => a.job_id), sub.collect]);
  // Tasks that left the queue: the controller still remembers them for MinJobAge (default 300 s).
  for (const a of sub.arrays) {
    if (a.hashes.every((_, i) => out.has(`${a.job_id}_${i}`))) continue;
    for (const j of await scontrolJobs(a.job_id)) if (!out.has(j.id)) out.set(j.id, j);
  }
  if (!out.has(sub.collect)) { for (const j of await scontrolJobs(sub.collect)) out.set(j.id, j); }
  return out;
}

async function readCollect(paths: ProjectPaths, sub: Submission): Promise<CollectResult | null> {
  try {
    return JSON.parse(await Deno.readTextFile(`${submissionDir(paths, sub.id)}/collected.json`));
  } catch {
    return null;
  }
}

/** The status of one submission (Slurm's view and the cache's). */
export async function submissionStatus(paths: ProjectPaths, sub: Submission): Promise<SubmissionStatus> {
  const js = await states(sub);
  const runs: SlurmRunRow[] = [];
  const errors: string[] = [];
  for (const a of sub.arrays) {
    for (const [i, hash] of a.hashes.entries()) {
      const job = `${a.job_id}_${i}`;
      const s = js.get(job);
      const rec = await readRecord(entryPaths(paths.cache, hash)).catch(() => null);
      const fin = rec ? liveStatus(rec.status, entryPaths(paths.cache, hash)) : "missing";
      runs.push({
        run_id: a.run_ids[i],
        hash,
        job,
        slurm: s?.state ?? "gone",
        finelab: fin,
        step: rec?.status.step ?? null,
        steps: rec?.manifest?.config.train.steps ?? null,
      });
      if (s && /FAILED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL/.test(s.state)) {
        const tail = await logTail(paths, sub, job);
        const why = `${s.state}${s.exit ? ` exit ${s.exit}` : ""}${
          s.reason && s.reason !== "None" ? `, ${s.reason}` : ""
        }`;
        errors.push(`${a.run_ids[i]} (${job}, ${why}): ${tail}`);
      }
    }
  }
  const c = js.get(sub.collect);
  return {
    submission: sub,
    runs,
    collect: { job: sub.collect, slurm: c?.state ?? "gone", result: await readCollect(paths, sub) },
    errors,
  };
}

/** The last meaningful line a task wrote (finelab's error message, when it stopped on one). */
async function logTail(paths: ProjectPaths, sub: Submission, job: string): Promise<string> {
  try {
    const lines = (await Deno.readTextFile(`${submissionDir(paths, sub.id)}/logs/${job}.out`)).split("\n")
      .map((l) => l.trim()).filter(Boolean);
    return lines.filter((l) => /^(error|finelab):/.test(l)).pop() ?? lines.pop() ?? "(empty log)";
  } catch {
    return "(no log)";
  }
}

/** Formats a submission's status as text (what `--status` prints). */
export function formatStatus(st: SubmissionStatus): string {
  const s = st.submission;
  const lines = [
    `submission ${s.id} (${s.created_at}, from ${s.host}): ${st.runs.length} runs submitted, ` +
    `${s.cached.length} cached, ${Object.keys(s.in_flight).length} in flight elsewhere`,
  ];
  const w = Math.max(6, ...st.runs.map((r) => r.run_id.length));
  lines.push(`  ${"run".padEnd(w)}  hash          slurm job    slurm state   finelab`);
  for (const r of st.runs) {
    const step = r.step !== null && r.steps ? ` (step ${r.step}/${r.steps})` : "";
    lines.push(
      `  ${r.run_id.padEnd(w)}  ${r.hash.slice(0, 12)}  ${r.job.padEnd(11)}  ${
        r.slurm.padEnd(12)
      }  ${r.finelab}${step}`,
    );
  }
  const res = st.collect.result;
  lines.push(
    `  collect job ${st.collect.job}: ${st.collect.slurm}` +
      (res
        ? ` (ingested ${res.completed} completed, ${res.failed} failed${
          res.missing.length ? `, ${res.missing.length} missing` : ""
        })`
        : ""),
  );
  for (const e of st.errors) lines.push(`  error: ${e}`);
  return lines.join("\n");
}

/** The newest submission of an experiment, or null. */
export async function latestSubmission(paths: ProjectPaths, experiment: string): Promise<Submission | null> {
  return (await readSubmissions(paths, experiment)).pop() ?? null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True once a submission is over: its collect job wrote its result, or left the queue without one. */
export function isOver(st: SubmissionStatus): boolean {
  return st.collect.result !== null || !/PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUE/.test(st.collect.slurm);
}

/**
 * Follows a submission until it is collected, calling `draw` with (runs finished, total, status) every
 * `pollMs`; returns the final status.
 */
export async function watchSubmission(
  paths: ProjectPaths,
  sub: Submission,
  opts: { draw: (done: number, total: number, st: SubmissionStatus) => void; pollMs?: number },
): Promise<SubmissionStatus> {
  for (;;) {
    const st = await submissionStatus(paths, sub);
    opts.draw(st.runs.filter((r) => r.finelab === "completed" || r.finelab === "failed").length, st.runs.length, st);
    if (isOver(st)) return st;
    await sleep(opts.pollMs ?? 2000);
  }
}

/** Cancels every live job of an experiment's submissions; returns the job ids asked to stop. */
export async function cancelSubmissions(paths: ProjectPaths, experiment: string): Promise<string[]> {
  const ids: string[] = [];
  for (const s of await readSubmissions(paths, experiment)) {
    const live = await squeue([...s.arrays.map((a) => a.job_id), s.collect]);
    const jobs = new Set([...live.keys()].map((k) => k.split("_")[0]));
    ids.push(...jobs);
  }
  await scancel(ids);
  return ids;
}
