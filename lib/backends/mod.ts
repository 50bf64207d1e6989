/**
 * Choosing and initialising the TensorFlow.js backend a run executes on.
 *
 * - {@link resolveBackend} turns a requested name (`auto` or concrete) into a concrete backend
 *   without training anything; an explicit request for an unavailable backend throws an error
 *   that says why and how to fix it (never a silent fallback).
 * - {@link initBackend} makes it the active tfjs backend, installs our kernel workarounds
 *   (lib/backends/wasm_kernels.ts on wasm) and returns what was chosen, for the caller to print
 *   and record.
 *
 * `auto` order (fastest first on the machines we measured, shared/research/compute.md §4 and
 * bench/README.md): `tensorflow` (only when @tensorflow/tfjs-node(-gpu) is installed; we never
 * download it), `webgpu` (only with a hardware adapter: a software one such as llvmpipe is ~6x
 * slower than wasm), `native` (system CBLAS + our compiled kernels, lib/backends/native/; only
 * when both load), `wasm`, `cpu`.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs"; // registers the cpu backend
import * as tfwasm from "@tensorflow/tfjs-backend-wasm";
import type { BackendName, ConcreteBackend } from "../experiment/config.ts";
import { installWasmKernels, WASM_KERNELS } from "./wasm_kernels.ts";
import { installWasmFusedKernels, WASM_FUSED_KERNELS } from "./wasm_fused.ts";
import { simdKernels } from "./wasm_simd/mod.ts";
import { initThreadedWasm, WASM_MAX_THREADS } from "./wasm_threads.ts";
import { KERNELS_WASM_SHA256 } from "./wasm_simd/kernels_wasm.ts";
import { installWebgpuKernels, WEBGPU_KERNELS } from "./webgpu_kernels.ts";
import { installWebgpuFusedKernels, WEBGPU_FUSED_KERNELS } from "./webgpu_fused.ts";
import { initNative, NATIVE_BACKEND, nativeAvailability, setNativeThreads } from "./native/mod.ts";

/** What {@link initBackend} set up. */
export interface BackendInfo {
  /** The active tfjs backend. */
  name: ConcreteBackend;
  /** tfjs-core version. */
  tfjs: string;
  /** Backend specifics: simd, threads, adapter, replaced kernels, ... */
  details: Record<string, string | number | boolean | null>;
}

/** A concrete backend plus a one-line explanation of the choice. */
export interface ResolvedBackend {
  /** The backend to use. */
  name: ConcreteBackend;
  /** Why it was chosen (for `auto`: what was skipped and why). */
  reason: string;
}

/** Options of {@link initBackend}. */
export interface InitOptions {
  /**
   * CPU threads. native: BLAS and kernel threads (default 1). wasm: XNNPACK's thread pool (tfjs's
   * threaded build, turned on under Deno by lib/backends/wasm_threads.ts; default
   * {@link defaultWasmThreads}, 1 = the single-threaded build); fixed for the process once the
   * wasm backend is up.
   */
  threads?: number;
}

interface Availability {
  ok: boolean;
  /** Why not (or what was found). */
  why: string;
  /** How to make it available (only when !ok). */
  fix?: string;
}

// ---- tensorflow (tfjs-node) -------------------------------------------------------------------

const TF_NODE_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"] as const;
const require_ = createRequire(import.meta.url);

/** Where an installed tfjs-node package lives, if any, and whether its native binding was built. */
function findTfNode(): { spec: string; dir: string; main: string; binding: string | null } | null {
  for (const spec of TF_NODE_PACKAGES) {
    let main: string;
    try {
      main = require_.resolve(spec);
    } catch {
      continue;
    }
    let dir = dirname(main);
    while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
    let binding: string | null = null;
    try {
      const lib = join(dir, "lib");
      for (const d of readdirSync(lib)) {
        if (d.startsWith("napi-v") && existsSync(join(lib, d, "tfjs_binding.node"))) binding = join(lib, d);
      }
    } catch { /* no lib/ */ }
    return { spec, dir, main, binding };
  }
  return null;
}

const TF_NODE_FIX = 'add "@tensorflow/tfjs-node": "npm:@tensorflow/tfjs-node@4.22.0" (or tfjs-node-gpu for CUDA) ' +
  "to the imports of deno.json and run `deno install --allow-scripts=npm:@tensorflow/tfjs-node`; its install " +
  "script downloads libtensorflow from storage.googleapis.com, so it needs that host to be reachable";

function tensorflowAvailability(): Availability {
  const found = findTfNode();
  if (!found) {
    return {
      ok: false,
      why: "neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node is installed",
      fix: TF_NODE_FIX,
    };
  }
  if (!found.binding) {
    return {
      ok: false,
      why: `${found.spec} is installed at ${found.dir} but its native binding (lib/napi-v*/tfjs_binding.node) ` +
        "is missing: its install script did not run or failed",
      fix: TF_NODE_FIX,
    };
  }
  return { ok: true, why: `${found.spec} at ${found.dir}` };
}

// ---- webgpu -----------------------------------------------------------------------------------

interface AdapterProbe {
  available: boolean;
  why: string;
  description: string | null;
  vendor: string | null;
  fallback: boolean;
}

let adapterProbe: Promise<AdapterProbe> | null = null;
const SOFTWARE_ADAPTERS = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render/i;

function probeAdapter(): Promise<AdapterProbe> {
  adapterProbe ??= (async () => {
    const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
    const none = { description: null, vendor: null, fallback: false };
    if (!gpu) {
      return {
        available: false,
        why: "navigator.gpu is undefined (WebGPU is off in this runtime; older Deno versions need --unstable-webgpu)",
        ...none,
      };
    }
    let adapter: GPUAdapter | null = null;
    try {
      adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
    } catch (e) {
      return { available: false, why: `navigator.gpu.requestAdapter() failed: ${(e as Error).message}`, ...none };
    }
    if (!adapter) return { available: false, why: "navigator.gpu.requestAdapter() found no adapter", ...none };
    const info = (adapter as unknown as { info?: GPUAdapterInfo }).info;
    const description = info?.description || info?.device || null;
    const fallback = Boolean(
      (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ??
        (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter,
    ) || SOFTWARE_ADAPTERS.test(description ?? "");
    return {
      available: true,
      why: `adapter ${description ?? "(unnamed)"}`,
      description,
      vendor: info?.vendor ?? null,
      fallback,
    };
  })();
  return adapterProbe;
}

async function webgpuAvailability(): Promise<Availability> {
  const p = await probeAdapter();
  if (!p.available) {
    return {
      ok: false,
      why: p.why,
      fix: "use a machine with a WebGPU-capable (Vulkan/Metal/D3D12) driver (and --unstable-webgpu on older Deno)",
    };
  }
  return { ok: true, why: p.why + (p.fallback ? " (software fallback adapter)" : "") };
}

// ---- wasm -------------------------------------------------------------------------------------

/** Directory holding tfjs-backend-wasm's .wasm binaries (with a trailing slash, as setWasmPaths wants). */
export function wasmDistDir(): string {
  // import.meta.resolve gives the package's main file (dist/tf-backend-wasm.node.js) as a file: URL.
  const main = import.meta.resolve("@tensorflow/tfjs-backend-wasm");
  const candidates: string[] = [];
  if (main.startsWith("file:")) candidates.push(dirname(fileURLToPath(main)));
  try {
    candidates.push(dirname(require_.resolve("@tensorflow/tfjs-backend-wasm")));
  } catch { /* not resolvable through node resolution */ }
  candidates.push(
    fileURLToPath(new URL("../../node_modules/@tensorflow/tfjs-backend-wasm/dist", import.meta.url)),
  );
  for (const c of candidates) {
    if (existsSync(join(c, "tfjs-backend-wasm-simd.wasm"))) return c + "/";
  }
  throw new Error(
    `wasm backend: tfjs-backend-wasm-simd.wasm not found (looked in ${candidates.join(", ")}). ` +
      "Run `deno install` in the repository root to populate node_modules.",
  );
}

function wasmAvailability(): Availability {
  if (typeof WebAssembly === "undefined") {
    return { ok: false, why: "this runtime has no WebAssembly", fix: "use the cpu backend" };
  }
  try {
    return { ok: true, why: `binaries in ${wasmDistDir()}` };
  } catch (e) {
    return { ok: false, why: (e as Error).message, fix: "run `deno install` in the repository root" };
  }
}

// ---- resolve ----------------------------------------------------------------------------------

async function availability(name: ConcreteBackend): Promise<Availability> {
  switch (name) {
    case "tensorflow":
      return tensorflowAvailability();
    case "webgpu":
      return await webgpuAvailability();
    case "native":
      return nativeAvailability();
    case "wasm":
      return wasmAvailability();
    case "cpu":
      return { ok: true, why: "pure-JS reference backend, always available" };
  }
}

const CONCRETE: readonly ConcreteBackend[] = ["tensorflow", "webgpu", "native", "wasm", "cpu"];

/**
 * Turns a requested backend into a concrete one (cheap: no training, at most one WebGPU adapter
 * request; native: loading two libraries, and compiling the kernels once if they are missing).
 * `auto` picks the first that works of tensorflow, webgpu (hardware adapters only), native, wasm,
 * cpu. An explicit request for an unavailable backend throws.
 */
export async function resolveBackend(requested: BackendName): Promise<ResolvedBackend> {
  if (requested === "auto") {
    const skipped: string[] = [];
    const tfn = tensorflowAvailability();
    if (tfn.ok) return { name: "tensorflow", reason: `auto: ${tfn.why}` };
    skipped.push(`tensorflow: ${tfn.why}`);
    const gpu = await probeAdapter();
    if (gpu.available && !gpu.fallback) return { name: "webgpu", reason: `auto: hardware WebGPU ${gpu.why}` };
    skipped.push(
      gpu.available
        ? `webgpu: ${gpu.why} is a software fallback, ~6x slower than wasm (pass --backend webgpu to use it anyway)`
        : `webgpu: ${gpu.why}`,
    );
    const nat = nativeAvailability();
    if (nat.ok) return { name: "native", reason: `auto: native ${nat.why} (${skipped.join("; ")})` };
    skipped.push(`native: ${nat.why} (to fix: ${nat.fix})`);
    const w = wasmAvailability();
    if (w.ok) return { name: "wasm", reason: `auto: wasm (${skipped.join("; ")})` };
    skipped.push(`wasm: ${w.why}`);
    return { name: "cpu", reason: `auto: cpu (${skipped.join("; ")})` };
  }
  if (!CONCRETE.includes(requested as ConcreteBackend)) {
    throw new Error(`backend = ${JSON.stringify(requested)} is not a backend; allowed: auto, ${CONCRETE.join(", ")}`);
  }
  const name = requested as ConcreteBackend;
  const a = await availability(name);
  if (!a.ok) {
    throw new Error(
      `backend "${name}" is unavailable: ${a.why}. To fix: ${a.fix}. Or choose another backend (auto picks the fastest available).`,
    );
  }
  return { name, reason: `requested: ${a.why}` };
}

// ---- init -------------------------------------------------------------------------------------

let current: BackendInfo | null = null;

/** The backend {@link initBackend} last set up, or null. */
export function currentBackend(): BackendInfo | null {
  return current && tf.getBackend() === current.name ? current : null;
}

async function setOrThrow(name: string, hint: string): Promise<void> {
  let ok = false, err: unknown = null;
  try {
    ok = await tf.setBackend(name);
  } catch (e) {
    err = e;
  }
  if (!ok) {
    const msg = err ? (err as Error).message ?? String(err) : "tf.setBackend returned false";
    throw new Error(`backend "${name}" failed to initialise: ${msg}. ${hint}`);
  }
  await tf.ready();
}

/** Throws unless the running wasm backend has `threads` threads (its pool starts once per process). */
function wasmThreadsFixed(threads: number): void {
  if (tfwasm.getThreadsCount() !== threads) {
    throw new Error(
      `wasm backend: already initialised in this process with ${tfwasm.getThreadsCount()} thread(s); ` +
        `${threads} cannot be set now (tfjs-backend-wasm starts its thread pool once)`,
    );
  }
}

/**
 * Makes `name` the active tfjs backend (idempotent), enables prod mode and installs our kernel
 * workarounds. Returns what was set up; call {@link resolveBackend} first for a helpful error
 * when the backend is missing.
 */
export async function initBackend(name: ConcreteBackend, opts: InitOptions = {}): Promise<BackendInfo> {
  // tfjs-backend-wasm starts its thread pool once per process: another count later is an error.
  if (name === "wasm" && opts.threads !== undefined && tf.findBackend("wasm")) {
    wasmThreadsFixed(Math.max(1, Math.floor(opts.threads)));
  }
  const have = currentBackend();
  if (have && have.name === name) {
    if (name === "native" && opts.threads !== undefined && opts.threads !== have.details.threads) {
      setNativeThreads(opts.threads);
      have.details.threads = Math.max(1, Math.floor(opts.threads));
    }
    return have;
  }
  tf.enableProdMode();
  const details: BackendInfo["details"] = {};
  switch (name) {
    case "cpu":
      await setOrThrow("cpu", "");
      details.note = "pure-JS reference backend (~1 GFLOP/s): for checks, not training";
      break;
    case "native": {
      const info = initNative(opts.threads ?? 1);
      await setOrThrow(NATIVE_BACKEND, "");
      Object.assign(details, info);
      details.matmul = "system CBLAS sgemm on the tensors' memory (transpose flags to BLAS)";
      details.note = "tfjs-backend-cpu kernels, with matmul and the fused model ops native";
      break;
    }
    case "wasm": {
      const up = tf.findBackend("wasm") !== null;
      const threads = Math.max(1, Math.floor(opts.threads ?? (up ? tfwasm.getThreadsCount() : defaultWasmThreads())));
      const init = () => setOrThrow("wasm", "Run `deno install` so node_modules has the .wasm binaries.");
      const dir = up ? null : wasmDistDir();
      if (dir) {
        tfwasm.setWasmPaths(dir);
        details.wasm_dir = dir;
      }
      if (dir && threads > 1) {
        details.pthread_workers = (await initThreadedWasm(threads, init, { distDir: dir })).workers;
      } else await init();
      installWasmKernels();
      installWasmFusedKernels();
      details.simd = Boolean(await tf.env().getAsync("WASM_HAS_SIMD_SUPPORT"));
      details.multithread_support = Boolean(await tf.env().getAsync("WASM_HAS_MULTITHREAD_SUPPORT"));
      details.threads_requested = threads;
      details.threads = tfwasm.getThreadsCount();
      details.kernels_replaced = WASM_KERNELS.join(",");
      details.kernels_added = WASM_FUSED_KERNELS.join(",");
      // Instantiated now, on tfjs's heap, so a pinned-version mismatch fails here and not mid-run.
      details.simd_kernels = `wasm_simd ABI ${simdKernels(tf.backend() as never).abi_version()}, ` +
        `sha256 ${KERNELS_WASM_SHA256.slice(0, 16)}`;
      details.matmul = "xnnpack (explicit transposes; batched as per-slice 2-D calls)";
      break;
    }
    case "webgpu": {
      const a = await webgpuAvailability();
      if (!a.ok) throw new Error(`backend "webgpu" is unavailable: ${a.why}. To fix: ${a.fix}.`);
      await import("@tensorflow/tfjs-backend-webgpu");
      await setOrThrow("webgpu", "");
      installWebgpuKernels();
      installWebgpuFusedKernels();
      const p = await probeAdapter();
      details.adapter = p.description;
      details.vendor = p.vendor;
      details.fallback_adapter = p.fallback;
      details.kernels_replaced = WEBGPU_KERNELS.join(",");
      details.kernels_added = WEBGPU_FUSED_KERNELS.join(",");
      details.note = "read tensors with await t.data(): dataSync() fails under Deno";
      break;
    }
    case "tensorflow": {
      const found = findTfNode();
      const a = tensorflowAvailability();
      if (!found || !a.ok) throw new Error(`backend "tensorflow" is unavailable: ${a.why}. To fix: ${a.fix}.`);
      // Import through the import map when the user mapped it, else by file (node resolution).
      const viaMap = (() => {
        try {
          return import.meta.resolve(found.spec);
        } catch {
          return null;
        }
      })();
      await import(viaMap ?? new URL(`file://${found.main}`).href);
      await setOrThrow("tensorflow", `Check that ${found.spec} matches tfjs-core ${tf.version_core}.`);
      details.package = found.spec;
      details.package_version = JSON.parse(readFileSync(join(found.dir, "package.json"), "utf8")).version;
      break;
    }
    default:
      throw new Error(`backend = ${JSON.stringify(name)} is not a concrete backend; allowed: ${CONCRETE.join(", ")}`);
  }
  current = { name, tfjs: tf.version_core, details };
  return current;
}

/**
 * XNNPACK threads of the wasm backend when none are asked for: the logical cores, at most
 * {@link WASM_MAX_THREADS} (bench/README.md: 2 threads train the reference model 1.3-1.4x faster
 * than 1 on a 2-vCPU machine, with the same loss bits).
 */
export function defaultWasmThreads(): number {
  return Math.max(1, Math.min(WASM_MAX_THREADS, navigator.hardwareConcurrency || 1));
}

/** Reads a tensor's values asynchronously (works on every backend, unlike dataSync on webgpu). */
export async function readValues(t: tf.Tensor): Promise<Float32Array | Int32Array | Uint8Array> {
  return (await t.data()) as Float32Array | Int32Array | Uint8Array;
}
