/**
 * Slurm settings of a sweep: from the experiment module (`slurm: {...}`), `--config` files (`slurm:` key)
 * and the command line, later wins; validated before anything is submitted.
 *
 * @module
 */
import { ConfigError } from "../../experiment/validate.ts";

/** How array tasks are submitted. Every field maps to an sbatch option. */
export interface SlurmSettings {
  /** `--partition`. */
  partition?: string;
  /** `--gres`, e.g. `gpu:1`. */
  gres?: string;
  /** `--time` (a task's limit), e.g. `2:00:00`. */
  time?: string;
  /** `--mem`, e.g. `16G`. */
  mem?: string;
  /** Array throttle: at most this many tasks of a level at once (`--array=0-N%max_parallel`). */
  max_parallel?: number;
  /** `--cpus-per-task` (default 1). */
  cpus_per_task?: number;
  /** Seconds before the time limit at which Slurm signals the task to checkpoint (`--signal=B:USR1@<s>`; 60). */
  signal_s?: number;
  /** Extra sbatch arguments, passed through verbatim (e.g. `--account=lab`, `--qos=high`). */
  sbatch_args?: string[];
}

const KEYS = ["partition", "gres", "time", "mem", "max_parallel", "cpus_per_task", "signal_s", "sbatch_args"];

/** Checks one source of settings (`where` names it in messages); returns the problems. */
export function settingsProblems(x: unknown, where: string): string[] {
  if (x === undefined) return [];
  if (typeof x !== "object" || x === null || Array.isArray(x)) return [`${where}: must be a mapping`];
  const p: string[] = [];
  for (const [k, v] of Object.entries(x)) {
    if (!KEYS.includes(k)) p.push(`${where}.${k}: unknown key (allowed: ${KEYS.join(", ")})`);
    else if (["partition", "gres", "time", "mem"].includes(k)) {
      if (typeof v !== "string" || !v.trim() || /\s/.test(v)) {
        p.push(`${where}.${k}: ${JSON.stringify(v)} is not a word`);
      }
    } else if (k === "sbatch_args") {
      if (!Array.isArray(v) || v.some((a) => typeof a !== "string" || !a.startsWith("-"))) {
        p.push(`${where}.sbatch_args: ${JSON.stringify(v)} must be a list of options starting with "-"`);
      }
    } else if (!Number.isInteger(v) || (v as number) < (k === "signal_s" ? 0 : 1)) {
      p.push(`${where}.${k}: ${JSON.stringify(v)} must be an integer >= ${k === "signal_s" ? 0 : 1}`);
    }
  }
  return p;
}

/** Merges sources (later wins; sbatch_args append) after validating each; a ConfigError lists every problem. */
export function mergeSettings(sources: { where: string; value: unknown }[]): SlurmSettings {
  const problems = sources.flatMap((s) => settingsProblems(s.value, s.where));
  if (problems.length) throw new ConfigError("Invalid Slurm settings", problems);
  const out: SlurmSettings = {};
  for (const { value } of sources) {
    if (!value) continue;
    const v = value as SlurmSettings;
    for (const k of KEYS as (keyof SlurmSettings)[]) {
      if (v[k] === undefined) continue;
      if (k === "sbatch_args") out.sbatch_args = [...(out.sbatch_args ?? []), ...v.sbatch_args!];
      else (out as Record<string, unknown>)[k] = v[k];
    }
  }
  return out;
}

/** The sbatch options of an array task for these settings (the array, dependency and output come apart). */
export function sbatchOptions(s: SlurmSettings): string[] {
  const o: string[] = [];
  if (s.partition) o.push(`--partition=${s.partition}`);
  if (s.gres) o.push(`--gres=${s.gres}`);
  if (s.time) o.push(`--time=${s.time}`);
  if (s.mem) o.push(`--mem=${s.mem}`);
  o.push(`--cpus-per-task=${s.cpus_per_task ?? 1}`);
  return [...o, ...(s.sbatch_args ?? [])];
}
