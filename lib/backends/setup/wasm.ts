/**
 * The `wasm` backend: tfjs-backend-wasm (XNNPACK, threaded under Deno by lib/backends/wasm_threads.ts)
 * with finelab's kernel fixes (wasm_kernels.ts) and fused SIMD kernels (wasm_fused.ts, wasm_simd/).
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import * as tf from "@tensorflow/tfjs-core";
import * as tfwasm from "@tensorflow/tfjs-backend-wasm";
import { installWasmKernels, WASM_KERNELS } from "../wasm_kernels.ts";
import { installWasmFusedKernels, WASM_FUSED_KERNELS } from "../wasm_fused.ts";
import { simdKernels } from "../wasm_simd/mod.ts";
import { defaultWasmThreads, initThreadedWasm } from "../wasm_threads.ts";
import { KERNELS_WASM_SHA256 } from "../wasm_simd/kernels_wasm.ts";
import { type Availability, type BackendDetails, type InitOptions, setOrThrow } from "./common.ts";

const require_ = createRequire(import.meta.url);

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

/** Available when WebAssembly exists and the tfjs .wasm binaries are installed. */
export function availability(): Availability {
  if (typeof WebAssembly === "undefined") {
    return { ok: false, why: "this runtime has no WebAssembly", fix: "use the cpu backend" };
  }
  try {
    return { ok: true, why: `binaries in ${wasmDistDir()}` };
  } catch (e) {
    return { ok: false, why: (e as Error).message, fix: "run `deno install` in the repository root" };
  }
}

/** Throws unless the running wasm backend has `threads` threads (its pool starts once per process). */
export function check(opts: InitOptions): void {
  if (opts.threads === undefined || !tf.findBackend("wasm")) return;
  const threads = Math.max(1, Math.floor(opts.threads));
  if (tfwasm.getThreadsCount() !== threads) {
    throw new Error(
      `wasm backend: already initialised in this process with ${tfwasm.getThreadsCount()} thread(s); ` +
        `${threads} cannot be set now (tfjs-backend-wasm starts its thread pool once)`,
    );
  }
}

/** Starts tfjs-backend-wasm (its thread pool once per process) and installs finelab's kernels. */
export async function setup(opts: InitOptions): Promise<BackendDetails> {
  const details: BackendDetails = {};
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
  return details;
}
