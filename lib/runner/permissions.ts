/**
 * The Deno permissions finelab's commands run with: least privilege, no `-A`, no network.
 *
 * `deno task exp|query|...|serve|report|diff` run with the permission set `finelab` in deno.json, these flags
 * for the default layout; when the results folder moves (FINELAB_RESULTS) or a command names paths outside the
 * project, lib/cli/launch.ts relaunches with the flags computed here; `deno run lib/cli/permissions.ts` prints them. They live in the runner because the
 * executors (lib/executor/slurm) start `exp --run <hash>` processes with them. The fault suite spawns the CLI with
 * exactly these flags, so every test of it also checks they suffice.
 *
 * | flag | scope | why |
 * | --- | --- | --- |
 * | --allow-read | the project folder, the results folder, the experiments folder, /proc/cpuinfo, FINELAB_EXTRA_READ, FINELAB_FONT_DIRS | code, node_modules (with the plot font), data, results; CPU model for provenance; optional extra fonts |
 * | --allow-write | the results folder only | cache, checkpoints, DuckDB, plots |
 * | --allow-ffi | unscoped | native addons of DuckDB and resvg; the native backend's BLAS and kernels (Deno's pointer APIs need unscoped FFI) |
 * | --allow-run | git, this deno binary | git commit for provenance; `deno info` for the code hash |
 * | --allow-env | the FINELAB_* variables, CI, and the few a dependency reads (see ENV_VARS) | settings |
 * | --allow-sys | hostname, osRelease, cpus, networkInterfaces | provenance; resvg's libc probe reads networkInterfaces |
 * | network | none | no command downloads anything (npm packages come from `deno install`) |
 *
 * Native code loaded through FFI (DuckDB, resvg) is outside Deno's sandbox; it only touches the
 * database and font files finelab hands it.
 *
 * @module
 */
import { join } from "node:path";
import { NATIVE_PERMISSIONS } from "../backends/native/permissions.ts";

/** Every environment variable finelab and its dependencies read (nothing else is allowed). */
export const ENV_VARS = [
  "FINELAB_RESULTS",
  "FINELAB_EXPERIMENTS",
  "FINELAB_EXTRA_READ",
  "FINELAB_FONT_DIRS",
  "FINELAB_DEBUG",
  "FINELAB_FAULT",
  "FINELAB_PROGRESS_EVERY",
  "FINELAB_DB_LOCK_TIMEOUT_S",
  "CI", // plain progress lines in CI
  "NO_COLOR", // commander's color detection
  "FORCE_COLOR",
  "CLICOLOR_FORCE",
  "LOG_TOKENS", // yaml's debug switches, read on every parse
  "LOG_STREAM",
] as const;

/** System information finelab (or a dependency) asks for. */
export const SYS_NAMES = ["hostname", "osRelease", "cpus", "networkInterfaces", "systemMemoryInfo"] as const;

/** Files outside the project that are read: the CPU model (provenance). Plot fonts come from node_modules. */
export const SYSTEM_READS = ["/proc/cpuinfo"] as const;

/** Inputs of {@link permissionFlags}; relative paths are relative to the current directory. */
export interface PermissionOptions {
  /** Project root (default: the current directory, where deno task runs). */
  root?: string;
  /** Results folder (default `<root>/results`; FINELAB_RESULTS). */
  results?: string | null;
  /** Experiments folder when not `<root>/experiments` (FINELAB_EXPERIMENTS). */
  experiments?: string | null;
  /** More folders to read, e.g. a dataset outside the project (FINELAB_EXTRA_READ, comma-separated). */
  extraRead?: string[];
  /** Extra font folders for the plots (FINELAB_FONT_DIRS, comma-separated; optional). */
  fontDirs?: string[];
  /** More paths to write (e.g. `plot --out <folder>`). */
  extraWrite?: string[];
  /** The deno binary `deno info` is run with (default: this one). */
  execPath?: string;
}

/** The permission flags of the CLI (without `--no-prompt` and `--unstable-webgpu`, which the tasks add). */
export function permissionFlags(opts: PermissionOptions = {}): string[] {
  const root = opts.root ?? ".";
  const results = opts.results || join(root, "results");
  const read = [root, results];
  if (opts.experiments) read.push(opts.experiments);
  const extra = [...(opts.extraRead ?? []), ...(opts.fontDirs ?? []), ...(opts.extraWrite ?? [])];
  read.push(...SYSTEM_READS, ...extra.filter((p) => p.length > 0));
  const unique = (xs: string[]) => xs.filter((x, i) => xs.indexOf(x) === i);
  // The native backend (system BLAS + compiled kernels) needs unscoped FFI: Deno's pointer APIs require it.
  const native = NATIVE_PERMISSIONS;
  return [
    `--allow-read=${unique(read).join(",")}`,
    `--allow-write=${
      unique([results, ...native.write.map((w) => join(root, w)), ...(opts.extraWrite ?? [])]).join(",")
    }`,
    `--allow-ffi`,
    `--allow-run=git,${opts.execPath ?? Deno.execPath()},${native.run.join(",")}`,
    `--allow-env=${unique([...ENV_VARS, ...native.env]).join(",")}`,
    `--allow-sys=${SYS_NAMES.join(",")}`,
  ];
}

/** The flags for the settings in the environment (what `deno task` uses), plus paths from the command line. */
export function flagsFromEnv(
  extra: { extraRead?: string[]; extraWrite?: string[]; execPath?: string } = {},
): string[] {
  const get = (k: string) => {
    try {
      return Deno.env.get(k) ?? null;
    } catch {
      return null;
    }
  };
  return permissionFlags({
    results: get("FINELAB_RESULTS"),
    experiments: get("FINELAB_EXPERIMENTS"),
    extraRead: [...(get("FINELAB_EXTRA_READ") ?? "").split(",").map((s) => s.trim()), ...(extra.extraRead ?? [])],
    fontDirs: (get("FINELAB_FONT_DIRS") ?? "").split(",").map((s) => s.trim()),
    extraWrite: extra.extraWrite,
    execPath: extra.execPath,
  });
}
