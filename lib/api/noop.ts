/**
 * No-op reruns: when nothing that `run` or `plan` depends on has changed since the same request last
 * completed, answer from a memo instead of planning, training, ingesting and plotting again.
 *
 * A memo (`results/memo/<key>.json`, key: the experiment id and the request's options) holds:
 * - the stamps (inode, size, mtime and ctime, nanoseconds) of every file and folder under `lib/`, the
 *   experiments folder and `data/`, of `deno.json`, `deno.lock`, the `--config` files and any `data.path`
 *   file, taken *before* the plan was made, and of `node_modules/@tensorflow` (tfjs-node installed), plus
 *   the Deno version, OS and FINELAB_BLAS / FINELAB_NATIVE_DIR / CC: any edit, added or removed file changes
 *   a stamp, so the plan (every run hash) is made again. When `backend: auto` fell back to wasm or cpu for
 *   want of a BLAS library, a library that loads now re-plans too. (A GPU adapter that appears is not
 *   noticed: delete `results/memo/` or pass `--backend webgpu`.)
 * - the plan as `--dry-run` shows it (run ids, hashes, parents, cache folders);
 * - after a run whose every outcome completed: the stamps of each run's `status.json`, the results
 *   database and the plot files as that run left them, and what it printed (summary table, report). When
 *   all of these are unchanged the database and plots are current for this plan and nothing is redone.
 *
 * Stamps are compared for equality only (an mtime going backwards counts as a change). A memo that does
 * not parse, or any stamp that differs, means "plan again" (the memo is then rewritten); a memo can make a
 * rerun slower, never different. Nothing here imports the planner, tfjs, DuckDB or the plots.
 *
 * @module
 */
import { resolve } from "node:path";
import { blasCandidates } from "../backends/native/blas.ts";
import type { Plan } from "../runner/plan.ts";
import type { ProjectPaths } from "../util/paths.ts";
import { readJsonOrNull } from "../util/fs.ts";

/** A path and its stamp (`-` for a missing path). */
type Stamp = [path: string, stamp: string];

/** What `--dry-run` shows of a run. */
export interface MemoRun {
  run_id: string;
  hash: string;
  /** `experiment/run_id` of the run it starts from (`init_from`), or null. */
  parent: string | null;
  /** The run's cache folder. */
  dir: string;
  /** `experiment/run_id` for a parent run of another experiment (listed first), else null. */
  dependency: string | null;
}

/** The plan as the memo keeps it. */
export interface MemoPlan {
  experiment: string;
  scale: string;
  backend: Plan["backend"];
  runs: MemoRun[];
}

/** What a completed run printed and left behind. */
export interface MemoOutputs {
  declared: boolean;
  /** Whether the plots were drawn (a rerun with the other choice is not a no-op). */
  plot: boolean;
  /** The text `run` printed (summary table, report), in order. */
  printed: string[];
  /** Plot files written. */
  plots: string[];
  stamps: Stamp[];
}

interface Memo {
  version: 1;
  request: unknown;
  inputs: Stamp[];
  plan: MemoPlan;
  outputs: MemoOutputs | null;
}

const VERSION = 1;

/**
 * How recent a change must be for its stamp not to be trusted (ms): file times come from a coarse clock
 * (a kernel tick) and Deno reports ctime in whole seconds, so a second change within the same second as the
 * first could leave the stamp unchanged. An input changed this recently gets a stamp that never matches (it
 * is stamped again on the next run), as git does with "racily clean" index entries.
 */
const RACY_MS = 2000;

/**
 * The stamp of a path: inode, size, mtime and ctime (ctime cannot be set back, so an edit that restores the
 * mtime still shows); `-` when it does not exist or cannot be read. With `racy`, a change less than
 * {@link RACY_MS} old gives a stamp that matches nothing.
 */
function stamp(path: string, racy: boolean): string {
  try {
    const st = Deno.statSync(path); // synchronous: hundreds of stats cost less than as many thread hops
    const ms = (d: Date | null) => d?.getTime() ?? 0;
    if (racy && Date.now() - Math.max(ms(st.mtime), ms(st.ctime)) < RACY_MS) return `racy:${crypto.randomUUID()}`;
    return `${st.ino}:${st.size}:${ms(st.mtime)}:${ms(st.ctime)}:${st.isDirectory ? "d" : "f"}`;
  } catch {
    return "-";
  }
}

/**
 * Stamps of `paths`. Inputs (`racy`: code, data, config files) are stamped before the plan reads them, so a
 * change within the same clock tick would go unseen; outputs are stamped after this process wrote them.
 */
function stamps(paths: string[], racy = false): Stamp[] {
  return paths.map((p) => [p, stamp(p, racy)] as Stamp);
}

/** Every file and folder under `dir` (the folder itself included; dot-entries skipped). */
async function walk(dir: string, out: string[]): Promise<void> {
  out.push(dir);
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return;
  }
  await Promise.all(
    entries.filter((e) => !e.name.startsWith(".")).map(async (e) => {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(p, out);
      else out.push(p);
    }),
  );
}

/** What the plan's backend choice depends on besides the stamped files (changes here re-plan). */
function machineFingerprint(root: string): Record<string, unknown> {
  const env = (k: string) => {
    try {
      return Deno.env.get(k) ?? null;
    } catch {
      return null;
    }
  };
  return {
    deno: Deno.version.deno,
    os: `${Deno.build.os}-${Deno.build.arch}`,
    blas: env("FINELAB_BLAS"),
    native_dir: env("FINELAB_NATIVE_DIR"),
    cc: env("CC"),
    root,
  };
}

/**
 * True when `backend: auto` settled for wasm or cpu because no BLAS library loaded, and one loads now
 * (OpenBLAS was installed since): the plan must be made again. A failing dlopen is cheap; when native was
 * chosen nothing is probed.
 */
function nativeAppeared(backend: Plan["backend"]): boolean {
  if (!backend.reason.startsWith("auto") || (backend.name !== "wasm" && backend.name !== "cpu")) return false;
  for (const lib of blasCandidates()) {
    try {
      Deno.dlopen(lib, {}).close();
      return true;
    } catch { /* still missing */ }
  }
  return false;
}

/** The input paths whose stamps a plan depends on. */
async function inputPaths(paths: ProjectPaths, extra: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const d of [`${paths.root}/lib`, paths.experiments, `${paths.root}/data`]) await walk(d, out);
  out.push(`${paths.root}/deno.json`, `${paths.root}/deno.lock`, `${paths.root}/node_modules/@tensorflow`);
  out.push(...extra.map((p) => resolve(p)));
  return [...new Set(out)].sort();
}

/** A memo's request: what was asked (the file name is its hash). */
export interface MemoRequest {
  id: string;
  scale?: string;
  set?: string[];
  config?: string[];
  backend?: string;
}

/** A 64-bit FNV-1a hash of a string, hex (a file name: the memo holds its whole request and is compared). */
function fnv(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) h = BigInt.asUintN(64, (h ^ BigInt(text.charCodeAt(i))) * 0x100000001b3n);
  return h.toString(16).padStart(16, "0");
}

function memoFile(paths: ProjectPaths, request: unknown): string {
  return `${paths.results}/memo/${fnv(JSON.stringify(request))}.json`;
}

function fullRequest(paths: ProjectPaths, r: MemoRequest): unknown {
  return {
    version: VERSION,
    id: r.id,
    scale: r.scale ?? "default",
    set: r.set ?? [],
    config: (r.config ?? []).map((c) => resolve(c)),
    backend: r.backend ?? null,
    experiments: paths.experiments,
    machine: machineFingerprint(paths.root),
  };
}

/** Inputs stamped before planning; {@link savePlan} stores them with the plan made from them. */
export interface PlanStamps {
  request: unknown;
  inputs: Stamp[];
}

/** Stamps a request's inputs (call before planning). */
export async function stampInputs(paths: ProjectPaths, r: MemoRequest): Promise<PlanStamps> {
  return { request: fullRequest(paths, r), inputs: stamps(await inputPaths(paths, r.config ?? []), true) };
}

/** A plan as the memo keeps it: parents of other experiments first, then the plan's runs. */
export function memoPlanOf(plan: Plan): MemoPlan {
  const label = (r: Plan["runs"][number]) => `${r.config.experiment}/${r.run_id}`;
  const row = (r: Plan["runs"][number], dependency: string | null): MemoRun => ({
    run_id: r.run_id,
    hash: r.hash,
    parent: r.parent ? label(r.parent) : null,
    dir: r.paths.dir,
    dependency,
  });
  return {
    experiment: plan.experiment.id,
    scale: plan.scale,
    backend: plan.backend,
    runs: [...plan.dependencies.map((r) => row(r, label(r))), ...plan.runs.map((r) => row(r, null))],
  };
}

/** Stores a plan made from inputs stamped by {@link stampInputs}; a run's outputs come with {@link saveOutputs}. */
export async function savePlan(paths: ProjectPaths, s: PlanStamps, plan: Plan): Promise<void> {
  const dataFiles = [...plan.runs, ...plan.dependencies].map((r) => r.config.data?.path).filter((p) =>
    typeof p === "string"
  ) as string[];
  const inputs = [...s.inputs, ...stamps(dataFiles.map((p) => resolve(paths.root, p)), true)];
  const memo: Memo = { version: VERSION, request: s.request, inputs, plan: memoPlanOf(plan), outputs: null };
  await write(paths, memo);
}

async function write(paths: ProjectPaths, memo: Memo): Promise<void> {
  // Written to a temporary name and renamed (a reader sees the old memo or the new one), but not through
  // util/fs.ts's atomicWrite: a memo is not a fault point of the fault suite (FINELAB_FAULT counts those).
  const path = memoFile(paths, memo.request);
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  try {
    await Deno.mkdir(`${paths.results}/memo`, { recursive: true });
    await Deno.writeTextFile(tmp, JSON.stringify(memo));
    await Deno.rename(tmp, path);
  } catch {
    /* a read-only or full results folder: no memo, no harm */
    await Deno.remove(tmp).catch(() => {});
  }
}

/**
 * What a completed run of the memo's plan left: each run's status.json and every file it vouches for (by
 * sha256: manifest, config, summary, metrics, ...; a corrupt entry is retrained, so its files count), the
 * database and its write-ahead log, the plot folder and files.
 */
async function outputPaths(paths: ProjectPaths, memo: Memo, plots: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of memo.plan.runs) {
    out.push(`${r.dir}/status.json`);
    const status = await readJsonOrNull<{ files?: Record<string, string> }>(`${r.dir}/status.json`).catch(() => null);
    out.push(...Object.keys(status?.files ?? {}).map((f) => `${r.dir}/${f}`));
  }
  out.push(paths.db, `${paths.db}.wal`, `${paths.plots}/${memo.plan.experiment}`, ...plots);
  return out;
}

/**
 * Records what a run of the memo's plan printed and the stamps of what it left (status files, database,
 * plots); call after the run finished and every outcome completed.
 */
export async function saveOutputs(
  paths: ProjectPaths,
  r: MemoRequest,
  out: Omit<MemoOutputs, "stamps">,
): Promise<void> {
  const memo = await readJsonOrNull<Memo>(memoFile(paths, fullRequest(paths, r))).catch(() => null);
  if (!memo || memo.version !== VERSION) return;
  memo.outputs = { ...out, stamps: stamps(await outputPaths(paths, memo, out.plots)) };
  await write(paths, memo);
}

const same = (want: Stamp[]) => want.every(([p, s]) => stamp(p, false) === s);

/** The plan of a request when none of its inputs changed since it was made; null otherwise. */
export async function memoPlan(paths: ProjectPaths, r: MemoRequest): Promise<MemoPlan | null> {
  return (await validMemo(paths, r))?.plan ?? null;
}

async function validMemo(paths: ProjectPaths, r: MemoRequest): Promise<Memo | null> {
  let memo: Memo | null;
  try {
    memo = await readJsonOrNull<Memo>(memoFile(paths, fullRequest(paths, r)));
  } catch {
    return null;
  }
  if (!memo || memo.version !== VERSION || !Array.isArray(memo.inputs) || !memo.plan) return null;
  if (JSON.stringify(memo.request) !== JSON.stringify(fullRequest(paths, r))) return null;
  if (nativeAppeared(memo.plan.backend)) return null;
  return same(memo.inputs) ? memo : null;
}

/**
 * What the last run of this request printed and produced, when nothing changed since: its inputs (so the
 * same plan), every run's status file, the results database and the plots. Null otherwise. `plot`: whether
 * the plots must have been drawn (null: either).
 */
export async function memoOutputs(
  paths: ProjectPaths,
  r: MemoRequest,
  plot: boolean | null,
): Promise<{ plan: MemoPlan; outputs: MemoOutputs } | null> {
  const memo = await validMemo(paths, r);
  if (!memo?.outputs || !Array.isArray(memo.outputs.stamps)) return null;
  if (plot !== null && memo.outputs.plot !== plot) return null;
  // The stamped paths include each run's status.json, so a change of what it vouches for shows there.
  return same(memo.outputs.stamps) ? { plan: memo.plan, outputs: memo.outputs } : null;
}
