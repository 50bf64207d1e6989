/**
 * What the bench runs against: the PyTorch peer (Debian python3-torch), the system BLAS it links, the
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

/** A Python that imports torch, with its version and BLAS, or why there is none. */
export function findTorch(preferred: string | null): { python: string; version: string; blas: string } | {
  error: string;
} {
  const tried: string[] = [];
  for (const py of preferred ? [preferred] : [Deno.env.get("FINELAB_PYTHON"), "/usr/bin/python3", "python3"]) {
    if (!py) continue;
    try {
      const r = new Deno.Command(py, {
        args: ["-c", "import torch;print(torch.__version__);print(torch.__config__.show())"],
        stdout: "piped",
        stderr: "piped",
      }).outputSync();
      const out = new TextDecoder().decode(r.stdout);
      if (r.success) {
        const blas = /BLAS_INFO=([^,\n]+)/.exec(out)?.[1] ?? "unknown";
        return { python: py, version: out.split("\n")[0].trim(), blas };
      }
      tried.push(`${py}: ${new TextDecoder().decode(r.stderr).trim().split("\n").pop()}`);
    } catch (e) {
      tried.push(`${py}: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  return { error: `no Python with torch (${tried.join("; ")})` };
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
