/**
 * The Slurm client commands finelab calls (sbatch, squeue, scontrol, scancel), with one clear error when
 * Slurm is missing and Slurm's own message, verbatim, when it refuses something.
 *
 * @module
 */

/** Slurm is not there, or refused a request: a user error (exit 2) whose message says what to do. */
export class SlurmError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "SlurmError";
  }
}

/** What a Slurm command printed. */
export interface SlurmOutput {
  code: number;
  stdout: string;
  stderr: string;
}

import { NOT_FOUND_MARK } from "./exec.ts";

const NOT_FOUND =
  "is not on PATH. The Slurm executor submits with Slurm's client commands: run this on a login node of a " +
  "Slurm cluster (where `sbatch` works), or install the clients (Debian/Ubuntu: `apt-get install slurm-client`, " +
  "with the cluster's slurm.conf; a single-node test cluster: `apt-get install slurm-wlm munge`). Without " +
  "Slurm, drop `--executor slurm` to train here.";

const EXEC = new URL("./exec.ts", import.meta.url).pathname;

/** Runs a Slurm command (through exec.ts); throws SlurmError when it is missing, else returns its output. */
export async function slurm(cmd: string, args: string[], opts: { stdin?: string } = {}): Promise<SlurmOutput> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", `--allow-run=${cmd}`, EXEC, cmd, ...args],
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const o = await child.output();
  const dec = new TextDecoder();
  const stderr = dec.decode(o.stderr);
  if (o.code === 127 && stderr.includes(NOT_FOUND_MARK)) throw new SlurmError(`\`${cmd}\` ${NOT_FOUND}`);
  return { code: o.code, stdout: dec.decode(o.stdout), stderr };
}

/** Runs a Slurm command and returns stdout; a failure is a SlurmError quoting Slurm's message verbatim. */
export async function slurmOk(cmd: string, args: string[], opts: { stdin?: string; what?: string } = {}) {
  const o = await slurm(cmd, args, opts);
  if (o.code !== 0) {
    throw new SlurmError(
      `${opts.what ?? cmd} failed (exit ${o.code}); Slurm says:\n${(o.stderr || o.stdout).trimEnd()}`,
    );
  }
  return o.stdout;
}

/** Submits a batch script (on stdin) with `sbatch --parsable <args>`; returns the job id. */
export async function sbatch(script: string, args: string[]): Promise<string> {
  const out = await slurmOk("sbatch", ["--parsable", ...args], { stdin: script, what: "sbatch" });
  const id = out.trim().split("\n").pop()!.split(";")[0];
  if (!/^\d+$/.test(id)) throw new SlurmError(`sbatch printed no job id:\n${out}`);
  return id;
}

/** One job (or array task) as squeue or scontrol sees it. */
export interface JobState {
  /** `123` or `123_4` (array task). */
  id: string;
  state: string;
  reason: string;
  /** Exit code `code:signal` once finished (scontrol only). */
  exit?: string;
}

/** Live jobs and array tasks of the given job ids (`squeue -r`: one line per task); missing ids are gone. */
export async function squeue(jobIds: string[]): Promise<Map<string, JobState>> {
  const out = new Map<string, JobState>();
  if (jobIds.length === 0) return out;
  const o = await slurm("squeue", ["-h", "-r", "-j", jobIds.join(","), "-o", "%i|%T|%r"]);
  // squeue exits 1 with "Invalid job id specified" when every id has left the controller.
  if (o.code !== 0 && /Invalid job id/i.test(o.stderr) && jobIds.length > 1) {
    // One id the controller forgot fails the whole query: ask for each alone.
    for (const id of jobIds) for (const [k, v] of await squeue([id])) out.set(k, v);
    return out;
  }
  if (o.code !== 0 && !/Invalid job id/i.test(o.stderr)) {
    throw new SlurmError(`squeue failed (exit ${o.code}); Slurm says:\n${o.stderr.trimEnd()}`);
  }
  for (const line of o.stdout.split("\n")) {
    const [id, state, reason] = line.trim().split("|");
    if (id && state) out.set(id, { id, state, reason: reason ?? "" });
  }
  return out;
}

/** Every job record the controller still holds for a job id (finished ones too, until MinJobAge). */
export async function scontrolJobs(jobId: string): Promise<JobState[]> {
  const o = await slurm("scontrol", ["show", "job", "-o", jobId]);
  if (o.code !== 0) return [];
  const jobs: JobState[] = [];
  for (const line of o.stdout.split("\n")) {
    if (!line.trim()) continue;
    const f = (k: string) => line.match(new RegExp(`(?:^| )${k}=(\\S*)`))?.[1] ?? "";
    const arrayTask = f("ArrayTaskId");
    const id = arrayTask && /^\d+$/.test(arrayTask) ? `${f("ArrayJobId")}_${arrayTask}` : f("JobId");
    jobs.push({ id, state: f("JobState"), reason: f("Reason"), exit: f("ExitCode") });
  }
  return jobs;
}

/** Cancels jobs (scancel); Slurm's message is returned for jobs already gone. */
export async function scancel(jobIds: string[]): Promise<string> {
  if (jobIds.length === 0) return "";
  const o = await slurm("scancel", jobIds);
  return o.stderr.trim();
}
