/**
 * The native CPU backend: tfjs-backend-cpu with matrix products in the system CBLAS and fused
 * kernels compiled from kernels/*.c, both called through Deno FFI on the tensors' memory.
 *
 * - {@link nativeAvailability}: whether it can run here (BLAS found, kernels built or buildable),
 *   and if not, why and how to fix it. Cheap after the first call.
 * - {@link initNative}: loads both libraries, registers the backend, sets threads.
 * - {@link measurePeak}: FP32 FMA peak of this machine (the MFU denominator of the benchmark).
 *
 * Threads: BLAS (OpenBLAS) and the kernels (OpenMP) use `threads` (default 1, the same default as
 * wasm; the benchmark compares equal thread counts). Results do not depend on the thread count for
 * the fused kernels; OpenBLAS sgemm is deterministic for a fixed thread count.
 *
 * Why a backend extending tfjs-backend-cpu rather than kernels registered on wasm: with the hot
 * ops native, the rest is a few hundred small kernel calls per step, and both ways reach the
 * tensors' memory without copies; cpu-backend tensors are plain TypedArrays that FFI takes
 * directly (no 4 GB wasm32 heap limit, no heap growth detaching views, no wasm internals), see
 * bench/README.md for the measurements.
 *
 * @module
 */
import { loadBlas } from "./blas.ts";
import { NativeUnavailableError } from "./build.ts";
import { loadKernels } from "./kernels.ts";
import { NATIVE_KERNELS, registerNativeBackend } from "./backend.ts";

export { NATIVE_BACKEND, NATIVE_KERNELS } from "./backend.ts";
export { BlasUnavailableError, loadBlas } from "./blas.ts";
export { ensureKernels, NativeBuildError, NativeUnavailableError } from "./build.ts";
export { loadKernels } from "./kernels.ts";

export { NATIVE_PERMISSIONS } from "./permissions.ts";
import { NATIVE_PERMISSIONS } from "./permissions.ts";

/** {@link NATIVE_PERMISSIONS} as command-line flags. */
export const NATIVE_PERMISSION_FLAGS: string = `--allow-ffi --allow-run=${NATIVE_PERMISSIONS.run.join(",")} ` +
  `--allow-env=${NATIVE_PERMISSIONS.env.join(",")} --allow-write=${NATIVE_PERMISSIONS.write.join(",")}`;

/** Whether the native backend can run here. */
export interface NativeAvailability {
  ok: boolean;
  /** What was found, or why not. */
  why: string;
  /** How to make it available (only when !ok). */
  fix?: string;
}

let availability: NativeAvailability | null = null;

/** Checks (once per process) that a CBLAS loads and the kernels library loads (building it if needed). */
export function nativeAvailability(): NativeAvailability {
  if (availability) return availability;
  if (typeof Deno === "undefined" || typeof Deno.dlopen !== "function") {
    return availability = { ok: false, why: "this runtime has no FFI (Deno.dlopen)", fix: "run under Deno" };
  }
  try {
    const kern = loadKernels(); // first: it tells which OpenBLAS kernels this CPU can run
    const blas = loadBlas({ cpuFeatures: kern.cpuFeatures });
    availability = {
      ok: true,
      why: `${blas.kind} ${blas.path}${blas.core ? ` (core ${blas.core})` : ""}; kernels ${kern.build.path}` +
        (kern.build.built ? ` (compiled now in ${kern.build.build_s.toFixed(1)} s)` : ""),
    };
  } catch (e) {
    if (e instanceof NativeUnavailableError) {
      availability = { ok: false, why: e.message, fix: e.fix };
    } else {
      const msg = (e as Error).message.split("\n")[0];
      const perm = e instanceof Deno.errors.NotCapable || /Requires .* access|NotCapable/.test(msg);
      availability = perm
        ? { ok: false, why: `a Deno permission is missing (${msg})`, fix: `run with ${NATIVE_PERMISSION_FLAGS}` }
        : { ok: false, why: msg, fix: "see the error message" };
    }
  }
  return availability;
}

/** What {@link initNative} set up (merged into the backend details). */
export interface NativeInfo {
  blas: string;
  blas_config: string;
  blas_core: string | null;
  blas_env: string;
  blas_threads: number | null;
  kernels: string;
  kernels_source_sha: string;
  kernels_compiler: string;
  kernels_flags: string;
  openmp: boolean;
  threads: number;
  kernels_replaced: string;
}

/** Loads BLAS and the kernels, registers the `native` tfjs backend and sets the thread count. */
export function initNative(threads = 1): NativeInfo {
  const a = nativeAvailability();
  if (!a.ok) throw new Error(`backend "native" is unavailable: ${a.why}. To fix: ${a.fix}.`);
  const blas = loadBlas(), kern = loadKernels();
  registerNativeBackend(blas, kern.k);
  const n = Math.max(1, Math.floor(threads));
  blas.setThreads(n);
  kern.k.fl_set_threads(n);
  return {
    blas: `${blas.kind} ${blas.path}`,
    blas_config: blas.config,
    blas_core: blas.core,
    blas_env: Object.entries(blas.env_set).map(([k, v]) => `${k}=${v}`).join(" "),
    blas_threads: blas.threads(),
    kernels: kern.build.path,
    kernels_source_sha: kern.build.source_sha,
    kernels_compiler: kern.build.compiler,
    kernels_flags: kern.build.flags.join(" "),
    openmp: kern.openmp,
    threads: n,
    kernels_replaced: NATIVE_KERNELS.join(","),
  };
}

/** Sets the BLAS and kernel threads of an initialised native backend. */
export function setNativeThreads(threads: number): void {
  const n = Math.max(1, Math.floor(threads));
  loadBlas().setThreads(n);
  loadKernels().k.fl_set_threads(n);
}

/** A measured FP32 peak. */
export interface Peak {
  /** The higher of the two measurements, GFLOP/s. */
  gflops: number;
  /** Threads used. */
  threads: number;
  /** Best GFLOP/s of the FMA-chain microbenchmark, and all its trials. */
  fma_gflops: number;
  trials: number[];
  /** Best GFLOP/s of BLAS sgemm at n = 1024. */
  sgemm_gflops: number;
  /** How it was measured. */
  method: string;
}

/**
 * FP32 peak of this machine with `threads` threads: the higher of (a) the best of `trials` runs of
 * independent FMA chains (24 x 16-float vectors per thread, kernels/core.c fl_peak_fma, ~`ms` ms each)
 * and (b) the best of `trials` BLAS sgemm calls at n = 1024 (which can exceed (a) when the clock
 * boosts). Best-of because other processes on a shared machine only ever slow it down.
 */
export function measurePeak(threads: number, opts: { trials?: number; ms?: number } = {}): Peak {
  const kern = loadKernels(), blas = loadBlas({ cpuFeatures: kern.cpuFeatures });
  const trials = opts.trials ?? 12, ms = opts.ms ?? 40;
  kern.k.fl_set_threads(threads);
  blas.setThreads(threads);
  // Calibrate iterations to ~ms milliseconds on one thread.
  let iters = 200_000n;
  const t0 = performance.now();
  kern.k.fl_peak_fma(1, iters);
  const dt = Math.max(0.05, performance.now() - t0);
  iters = BigInt(Math.max(10_000, Math.round(Number(iters) * ms / dt)));
  const res: number[] = [];
  for (let i = 0; i < trials; i++) res.push(kern.k.fl_peak_fma(threads, iters) / 1e9);
  const n = 1024, a = new Float32Array(n * n).fill(0.5), b = new Float32Array(n * n).fill(0.25);
  const c = new Float32Array(n * n);
  let sgemm = 0;
  for (let i = 0; i < trials + 2; i++) {
    const s0 = performance.now();
    blas.sgemm(false, false, n, n, n, a, n, b, n, c, n);
    const t = performance.now() - s0;
    if (i >= 2) sgemm = Math.max(sgemm, 2 * n ** 3 / (t / 1000) / 1e9);
  }
  const fma = Math.max(...res);
  return {
    gflops: Math.max(fma, sgemm),
    threads,
    fma_gflops: fma,
    trials: res.map((x) => Math.round(x * 10) / 10),
    sgemm_gflops: sgemm,
    method:
      `max of: best of ${trials} runs of 24 independent 16-float FMA chains per thread (kernels/core.c fl_peak_fma) ` +
      `= ${fma.toFixed(1)}, and best of ${trials} BLAS sgemm n=1024 = ${sgemm.toFixed(1)} GFLOP/s`,
  };
}
