/**
 * Choosing a backend: {@link resolveBackend} turns a requested name (`auto` or concrete) into a
 * concrete backend without training anything; an explicit request for an unavailable backend throws
 * an error that says why and how to fix it (never a silent fallback).
 *
 * `auto` order (fastest first on the machines we measured, shared/research/compute.md §4 and
 * bench/README.md): `tensorflow` (only when @tensorflow/tfjs-node(-gpu) is installed; we never
 * download it), `webgpu` (only with a hardware adapter: a software one such as llvmpipe is ~6x
 * slower than wasm), `native` (system CBLAS + our compiled kernels, lib/backends/native/; only
 * when both load), `wasm`, `cpu`.
 *
 * @module
 */
import { type BackendName, BACKENDS as CONCRETE, type ConcreteBackend } from "./names.ts";
import type { BackendSetup } from "./setup/common.ts";
import * as cpu from "./setup/cpu.ts";
import * as native from "./setup/native.ts";
import * as wasm from "./setup/wasm.ts";
import * as webgpu from "./setup/webgpu.ts";
import * as tensorflow from "./setup/tensorflow.ts";

/** A concrete backend plus a one-line explanation of the choice. */
export interface ResolvedBackend {
  /** The backend to use. */
  name: ConcreteBackend;
  /** Why it was chosen (for `auto`: what was skipped and why). */
  reason: string;
}

const SETUPS: Record<ConcreteBackend, Pick<BackendSetup, "availability">> = { cpu, native, wasm, webgpu, tensorflow };

/**
 * Turns a requested backend into a concrete one (cheap: no training, at most one WebGPU adapter
 * request; native: loading two libraries, and compiling the kernels once if they are missing).
 * `auto` picks the first that works of tensorflow, webgpu (hardware adapters only), native, wasm,
 * cpu. An explicit request for an unavailable backend throws.
 */
export async function resolveBackend(requested: BackendName): Promise<ResolvedBackend> {
  if (requested === "auto") {
    const skipped: string[] = [];
    const tfn = tensorflow.availability();
    if (tfn.ok) return { name: "tensorflow", reason: `auto: ${tfn.why}` };
    skipped.push(`tensorflow: ${tfn.why}`);
    const gpu = await webgpu.probeAdapter();
    if (gpu.available && !gpu.fallback) return { name: "webgpu", reason: `auto: hardware WebGPU ${gpu.why}` };
    skipped.push(
      gpu.available
        ? `webgpu: ${gpu.why} is a software fallback, ~6x slower than wasm (pass --backend webgpu to use it anyway)`
        : `webgpu: ${gpu.why}`,
    );
    const nat = native.availability();
    if (nat.ok) return { name: "native", reason: `auto: native ${nat.why} (${skipped.join("; ")})` };
    skipped.push(`native: ${nat.why} (to fix: ${nat.fix})`);
    const w = wasm.availability();
    if (w.ok) return { name: "wasm", reason: `auto: wasm (${skipped.join("; ")})` };
    skipped.push(`wasm: ${w.why}`);
    return { name: "cpu", reason: `auto: cpu (${skipped.join("; ")})` };
  }
  if (!CONCRETE.includes(requested as ConcreteBackend)) {
    throw new Error(`backend = ${JSON.stringify(requested)} is not a backend; allowed: auto, ${CONCRETE.join(", ")}`);
  }
  const name = requested as ConcreteBackend;
  const a = await SETUPS[name].availability();
  if (!a.ok) {
    throw new Error(
      `backend "${name}" is unavailable: ${a.why}. To fix: ${a.fix}. Or choose another backend (auto picks the fastest available).`,
    );
  }
  return { name, reason: `requested: ${a.why}` };
}
