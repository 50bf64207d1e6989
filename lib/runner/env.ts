/**
 * Environment capture: what machine and software trained a run. Recorded in every
 * manifest (explicit nulls where a value is unknown); only backend and tfjs version
 * are hashed, the rest is provenance.
 *
 * @module
 */
import os from "node:os";
import type { RunEnvironment } from "../core/records.ts";

async function git(args: string[], cwd: string): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", { args, cwd, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"));
    if (m) return m[1].trim();
  } catch { /* not Linux */ }
  try {
    return os.cpus()[0]?.model ?? "unknown";
  } catch {
    return "unknown";
  }
}

/**
 * The commit of `repoRoot` and whether the work tree differs from it: changed tracked files or any untracked
 * file that git does not ignore (a new experiment module is part of what trained the run). Nulls outside git.
 */
export async function gitState(repoRoot: string): Promise<{ commit: string | null; dirty: boolean | null }> {
  const commit = await git(["rev-parse", "HEAD"], repoRoot);
  const status = commit === null ? null : await git(["status", "--porcelain", "--untracked-files=normal"], repoRoot);
  return { commit, dirty: status === null ? null : status.length > 0 };
}

let cached: Promise<Omit<RunEnvironment, "backend" | "backend_details" | "tfjs">> | null = null;

/** Static part of the environment (computed once per process). */
export function baseEnvironment(
  repoRoot: string,
): Promise<Omit<RunEnvironment, "backend" | "backend_details" | "tfjs">> {
  cached ??= (async () => {
    const { commit, dirty } = await gitState(repoRoot);
    return {
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      typescript: Deno.version.typescript,
      os: `${Deno.build.os} ${os.release()}`,
      arch: Deno.build.arch,
      cpu: cpuModel(),
      cpus: navigator.hardwareConcurrency,
      hostname: os.hostname(),
      git_commit: commit,
      git_dirty: dirty,
    };
  })();
  return cached;
}
