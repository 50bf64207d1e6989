/**
 * What the bench runs against: the PyTorch peer (the newest torch found: bench/.venv, else Debian python3-torch), the system BLAS it links, the
 * backends available here, and the machine and commit it records.
 *
 * @module
 */
import { existsSync, realpathSync } from "node:fs";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { resolveBackend } from "../lib/backends/mod.ts";
import type { ConcreteBackend } from "../lib/core/config.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** A Python with torch: its path, torch version and BLAS. */
export interface TorchPython {
  python: string;
  version: string;
  blas: string;
}

/** The bench's own virtual environment (`deno task bench:setup_torch`: a modern PyTorch from pip). */
export const BENCH_VENV_PYTHON = join(ROOT, "bench", ".venv", "bin", "python");

/** Pythons to try for the torch peer: the one asked for, else $FINELAB_PYTHON, bench/.venv, the system's. */
export function torchCandidates(preferred: string | null, env: string | undefined): string[] {
  if (preferred) return [preferred];
  return [...new Set([env, BENCH_VENV_PYTHON, "/usr/bin/python3", "python3"].filter((p): p is string => !!p))];
}

/** Numeric parts of a torch version (`2.13.0+cpu` -> [2, 13, 0]; `1.13.0a0` -> [1, 13, 0]). */
export function versionKey(v: string): number[] {
  return v.split(/[+]/)[0].split(".").map((p) => parseInt(p, 10) || 0);
}

/** The newest torch among those found (the first of equal versions, i.e. the preferred one). */
export function newestTorch(found: readonly TorchPython[]): TorchPython | null {
  let best: TorchPython | null = null;
  for (const t of found) {
    if (!best) {
      best = t;
      continue;
    }
    const a = versionKey(t.version), b = versionKey(best.version);
    const i = a.findIndex((x, j) => x !== (b[j] ?? 0));
    if (i >= 0 && a[i] > (b[i] ?? 0)) best = t;
  }
  return best;
}

function probeTorch(py: string): TorchPython | string {
  try {
    const r = new Deno.Command(py, {
      args: ["-c", "import torch;print(torch.__version__);print(torch.__config__.show())"],
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    const out = new TextDecoder().decode(r.stdout);
    if (!r.success) return `${py}: ${new TextDecoder().decode(r.stderr).trim().split("\n").pop()}`;
    const blas = /BLAS_INFO=([^,\n]+)/.exec(out)?.[1] ?? "unknown";
    return { python: py, version: out.split("\n")[0].trim(), blas };
  } catch (e) {
    return `${py}: ${(e as Error).message.split("\n")[0]}`;
  }
}

/**
 * The Python with the newest torch among {@link torchCandidates} (a modern PyTorch in bench/.venv wins over
 * Debian's 1.13), with every one found; or why there is none.
 */
export function findTorch(preferred: string | null): (TorchPython & { found: TorchPython[] }) | { error: string } {
  const tried: string[] = [], found: TorchPython[] = [];
  for (const py of torchCandidates(preferred, Deno.env.get("FINELAB_PYTHON"))) {
    const t = probeTorch(py);
    if (typeof t === "string") tried.push(t);
    else found.push(t);
  }
  const best = newestTorch(found);
  return best ? { ...best, found } : { error: `no Python with torch (${tried.join("; ")})` };
}

/** Which BLAS a Debian `libblas.so.3` resolves to (torch links it), or null when unknown. */
export function systemLibblas(): string | null {
  for (const dir of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"]) {
    const p = join(dir, "libblas.so.3");
    if (existsSync(p)) {
      try {
        return realpathSync(p);
      } catch {
        return p;
      }
    }
  }
  return null;
}

/** Backends to measure by default: the available fast ones (never the pure-JS cpu, never a software GPU). */
export async function defaultBackends(log: (m: string) => void): Promise<string[]> {
  const out: string[] = [];
  for (const b of ["tensorflow", "webgpu", "native", "wasm"] as ConcreteBackend[]) {
    try {
      await resolveBackend(b);
    } catch (e) {
      if (b === "native" || b === "wasm") log(`bench: skipping ${b}: ${(e as Error).message}`);
      continue;
    }
    if (b === "webgpu") {
      const auto = await resolveBackend("auto");
      if (/software fallback/.test(auto.reason)) {
        log("bench: skipping webgpu: software adapter (~6x slower than wasm); --backends webgpu to include it");
        continue;
      }
    }
    out.push(b);
  }
  return out;
}

/** CPU, core count, OS and Deno version (recorded with every bench row). */
export function machine(): { cpu: string; cpus: number; os: string; deno: string } {
  let cpu = os.cpus()[0]?.model ?? "unknown";
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? cpu;
  } catch { /* not Linux */ }
  return { cpu, cpus: navigator.hardwareConcurrency, os: `${Deno.build.os} ${os.release()}`, deno: Deno.version.deno };
}

/** The checkout's commit (null outside git). */
export async function gitCommit(): Promise<string | null> {
  try {
    const r = await new Deno.Command("git", { args: ["rev-parse", "HEAD"], cwd: ROOT, stdout: "piped", stderr: "null" })
      .output();
    return r.success ? new TextDecoder().decode(r.stdout).trim() : null;
  } catch {
    return null;
  }
}

/** The PyTorch peer when `peer` is torch and it is installed (else null, after saying how to install it). */
export function torchPeer(
  cfg: { peer: "torch" | null; python: string | null; peerDevice: string },
  log: (m: string) => void,
): TorchPython | null {
  if (cfg.peer !== "torch") return null;
  const t = findTorch(cfg.python);
  if ("error" in t) {
    log(
      `peer torch: unavailable: ${t.error}.\n  To install a modern PyTorch: deno task bench:setup_torch (pip, into bench/.venv)` +
        `\n  or Debian's 1.13: apt-get install python3-torch libopenblas0-openmp (it links libblas.so.3; without` +
        ` OpenBLAS it gets the reference BLAS, ~25x slower)`,
    );
    return null;
  }
  const others = t.found.filter((f) => f.python !== t.python).map((f) => `${f.python} torch ${f.version}`);
  const lib = t.blas.toLowerCase().includes("mkl") ? null : systemLibblas();
  log(
    `peer torch (${cfg.peerDevice}): ${t.python} torch ${t.version}, BLAS ${t.blas}` +
      (lib ? `, libblas.so.3 -> ${lib}` : "") + (others.length ? ` (newest of: also ${others.join(", ")})` : ""),
  );
  if (lib && !/openblas/i.test(lib)) {
    log("  warning: libblas.so.3 is not OpenBLAS: apt-get install libopenblas0-openmp for a fair comparison");
  }
  return t;
}
