/**
 * Helpers of the fault suite: run the CLI as a subprocess with the same narrow permissions the
 * `deno task` commands use, inject faults through FINELAB_FAULT, and read results back.
 *
 * `FINELAB_FAULT_SUITE=full` (what `deno task test:faults` sets) runs every case; without it each
 * test runs a reduced, representative subset that fits `deno task test`'s time budget.
 *
 * @module
 */
import assert from "node:assert/strict";
import { openStore } from "../../store/mod.ts";
import { permissionFlags } from "../permissions.ts";
import type { RunsRow } from "../../runner/results.ts";
import { loadExperiment, makePlan, type Plan } from "../../runner/plan.ts";
import { projectPaths, REPO_ROOT } from "../../util/paths.ts";
import { removeDirs, tempDir, withTempDir } from "../../util/testing.ts";

/** The fixture experiments (faults: one run; faults-sweep: 2 variants x 2 seeds). */
export const FIXTURES = `${REPO_ROOT}/lib/cli/faults/testdata/experiments`;
const MAIN = `${REPO_ROOT}/lib/cli/main.ts`;

/** True when the full suite was asked for (FINELAB_FAULT_SUITE=full). */
export const FULL = (() => {
  try {
    return Deno.env.get("FINELAB_FAULT_SUITE") === "full";
  } catch {
    return false;
  }
})();

/** What a CLI run printed and how it ended. */
export interface Out {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link cli}. */
export interface CliOptions {
  env?: Record<string, string>;
  /** Experiments folder (default: the fixtures). */
  experiments?: string;
  /** Extra folders the CLI may read (e.g. a temp dataset). */
  extraRead?: string[];
}

/** The permission flags a CLI child of the suite gets: exactly the task's, for this results folder. */
export function childFlags(results: string, opts: CliOptions = {}): string[] {
  return [
    "--no-prompt",
    "--unstable-webgpu",
    ...permissionFlags({
      root: REPO_ROOT,
      results,
      experiments: opts.experiments ?? FIXTURES,
      extraRead: opts.extraRead,
    }),
  ];
}

function childEnv(results: string, opts: CliOptions): Record<string, string> {
  return {
    FINELAB_RESULTS: results,
    FINELAB_EXPERIMENTS: opts.experiments ?? FIXTURES,
    FINELAB_PROGRESS_EVERY: "0",
    NO_COLOR: "1",
    ...opts.env,
  };
}

/** The command that runs `finelab <args>` on `results` (not yet started). */
export function cliCommand(results: string, args: string[], opts: CliOptions = {}, piped = true): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...childFlags(results, opts), MAIN, ...args],
    cwd: REPO_ROOT,
    env: childEnv(results, opts),
    stdout: piped ? "piped" : "null",
    stderr: piped ? "piped" : "null",
  });
}

/** Runs `finelab <args>` with results in `results` and waits for it. */
export async function cli(results: string, args: string[], opts: CliOptions = {}): Promise<Out> {
  const out = await cliCommand(results, args, opts).output();
  const dec = new TextDecoder();
  return { code: out.code, signal: out.signal, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Asserts exit code 0 and returns the output. */
export function ok(o: Out, what = "command"): Out {
  assert.equal(o.code, 0, `${what}: exit ${o.code} (signal ${o.signal})\nstdout:\n${o.stdout}\nstderr:\n${o.stderr}`);
  return o;
}

/** Asserts the process was SIGKILLed by an injected fault (so the fault point was really reached). */
export function killed(o: Out, spec: string): Out {
  assert.ok(
    o.signal === "SIGKILL" || o.code === 137,
    `FINELAB_FAULT=${spec} did not kill the process: exit ${o.code} (signal ${o.signal})\n` +
      `stdout:\n${o.stdout}\nstderr:\n${o.stderr}`,
  );
  assert.match(o.stderr, /FINELAB_FAULT: SIGKILL at /, `FINELAB_FAULT=${spec}: the fault did not fire`);
  return o;
}

/** A fresh results folder ({@link tempDir}). */
export const tempResults: (prefix: string) => Promise<string> = tempDir;

/** Rows of `sql` over the results database of `results`, read in this process (read-only). */
export async function dbRows(results: string, sql: string): Promise<Record<string, unknown>[]> {
  const store = await openStore(`${results}/results.duckdb`, { readOnly: true });
  try {
    return (await store.query(sql)).rows as Record<string, unknown>[];
  } finally {
    await store.close();
  }
}

/** What the results of a finished experiment are, for bit-for-bit comparisons. */
export interface Snapshot {
  /** hash, run_id, status and every deterministic summary number, per run (ordered by hash). */
  runs: Record<string, unknown>[];
  /** Every metric row (hash, split, name, step, value), ordered. */
  metrics: Record<string, unknown>[];
  /** summary.extra of every run (the end-of-run analysis), ordered. */
  extra: Record<string, unknown>[];
}

/** The deterministic results in the database of `results` (timings and times excluded). */
export async function snapshot(results: string): Promise<Snapshot> {
  return {
    runs: await dbRows(
      results,
      "SELECT hash, run_id, status, steps_done, tokens_seen, final_train_loss, val_loss, val_ppl, params, " +
        "failure_step, failure_reason FROM runs ORDER BY hash",
    ),
    metrics: await dbRows(
      results,
      "SELECT hash, split, name, step, value FROM metrics ORDER BY hash, split, name, step",
    ),
    extra: await dbRows(results, "SELECT hash, name, value FROM run_metrics ORDER BY hash, name"),
  };
}

/** `runs --format json` of `results` (`verify`: `runs --verify`, which reads and checks every entry). */
export async function runsJson(results: string, opts: CliOptions & { verify?: boolean } = {}): Promise<RunsRow[]> {
  const args = ["runs", "--format", "json", ...(opts.verify ? ["--verify"] : [])];
  return JSON.parse(ok(await cli(results, args, opts), "runs").stdout);
}

/** The cache entry folders (run hashes) of `results`. */
export function entries(results: string): string[] {
  try {
    return [...Deno.readDirSync(`${results}/cache`)].filter((e) => e.isDirectory && /^[0-9a-f]{64}$/.test(e.name))
      .map((e) => `${results}/cache/${e.name}`).sort();
  } catch {
    return [];
  }
}

/** Names of leftovers of interrupted writes (temp files and temp checkpoint dirs) under an entry. */
export function leftovers(entry: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      if (/\.tmp-/.test(e.name)) out.push(`${dir}/${e.name}`);
      else if (e.isDirectory) walk(`${dir}/${e.name}`);
    }
  };
  walk(entry);
  return out;
}

/** Copies a results folder (to corrupt the copy). */
export async function copyResults(from: string, prefix: string): Promise<string> {
  const to = await tempResults(prefix);
  const copy = async (src: string, dst: string) => {
    for await (const e of Deno.readDir(src)) {
      if (e.isDirectory) {
        await Deno.mkdir(`${dst}/${e.name}`);
        await copy(`${src}/${e.name}`, `${dst}/${e.name}`);
      } else if (e.isFile) await Deno.copyFile(`${src}/${e.name}`, `${dst}/${e.name}`);
    }
  };
  await copy(from, to);
  return to;
}

/** A deterministic PRNG (mulberry32) for random kill times and bit positions; the seed is printed on failure. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What {@link repoPlans} returns: the loaded experiment and its plan per scale. */
export interface RepoPlans {
  loaded: Awaited<ReturnType<typeof loadExperiment>>;
  plans: Record<string, Plan>;
}

/**
 * The plans of the repository's experiment `id` (experiments/) at each of `scales` on the cpu backend,
 * made against a throwaway results folder (removed after), with the loaded experiment.
 */
export function repoPlans(id: string, scales: string[]): Promise<RepoPlans> {
  return withTempDir("plans", async (results) => {
    const paths = projectPaths(REPO_ROOT, results);
    const loaded = await loadExperiment(id, paths);
    const plans: Record<string, Plan> = {};
    for (const scale of scales) plans[scale] = await makePlan(loaded, { paths, overrides: { scale, backend: "cpu" } });
    return { loaded, plans };
  });
}

/** Removes temp folders (ignoring errors; {@link removeDirs}). */
export const cleanup: (...dirs: string[]) => Promise<void> = removeDirs;

/** Test options shared by the suite's tests (subprocesses and DuckDB handles outlive single ops). */
export const SUITE = { sanitizeResources: false, sanitizeOps: false } as const;
