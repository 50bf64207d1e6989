/**
 * Threads for tfjs-backend-wasm under Deno: its threaded build runs XNNPACK's matrix products on
 * a pthread pool (1.4-1.5x the GFLOP/s of one thread on this project's shapes, bench/README.md).
 *
 * tfjs turns threads off whenever it sees Node (tfjs#3830), and Deno looks like Node to it. With
 * the flag forced on, its emscripten glue hands `blob:` URLs to `node:worker_threads`, which Deno
 * refuses, and the pthread workers would load the glue from that blob with `fs.readFileSync`.
 * {@link initThreadedWasm} therefore, only while the backend initialises:
 *
 * - records the text of the two Blobs tfjs makes (the worker script and the glue);
 * - hands emscripten a `data:` URL of the worker script instead of a blob URL, with the glue
 *   inlined where the worker would read it from the blob (and `Object.assign(global, ...)`
 *   made to skip Deno's read-only `location`);
 * - reports twice the CPU count to the glue, since tfjs caps XNNPACK at half the logical cores
 *   (1 thread on a 2-vCPU machine).
 *
 * Everything is restored afterwards, and the pool's workers are unref'd so that they do not keep
 * the process alive. The patches look for exact strings of the pinned tfjs-backend-wasm 4.22.0
 * and throw (naming the missing piece) when one is not found: no silent single-threaded fallback.
 *
 * @module
 */
import os from "node:os";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import * as tf from "@tensorflow/tfjs-core";
import * as tfwasm from "@tensorflow/tfjs-backend-wasm";

/** The emscripten pieces reached after init (`Module.PThread` is exported by tfjs's glue). */
interface PThreadModule {
  PThread?: { runningWorkers: { unref?: () => void }[]; unusedWorkers: { unref?: () => void }[] };
}

/**
 * Most threads: tfjs's glue starts a pool of 8 pthread workers during init, and a worker started
 * later would get a blob: URL again (the patches are gone by then).
 */
export const WASM_MAX_THREADS = 8;

/**
 * XNNPACK threads of the wasm backend when none are asked for: the logical cores, at most
 * {@link WASM_MAX_THREADS} (bench/README.md: 2 threads train the reference model 1.3-1.4x faster
 * than 1 on a 2-vCPU machine, with the same loss bits).
 */
export function defaultWasmThreads(): number {
  return Math.max(1, Math.min(WASM_MAX_THREADS, navigator.hardwareConcurrency || 1));
}

/** What {@link initThreadedWasm} set up. */
export interface WasmThreadsInfo {
  /** Threads XNNPACK runs with (tfjs's getThreadsCount). */
  threads: number;
  /** Pool workers emscripten started (running + idle). */
  workers: number;
}

/** Why threads cannot run in this runtime, or null when they can. */
export function wasmThreadsUnsupported(): string | null {
  if (typeof SharedArrayBuffer !== "function") return "SharedArrayBuffer is not available";
  // An atomic load on a shared memory: validates only where WebAssembly threads are on.
  const probe = Uint8Array.from(
    "0061736d01000000010401600000030201000504010301010a0b0109004100fe1002001a0b".match(/../g)!,
    (h) => parseInt(h, 16),
  );
  if (!WebAssembly.validate(probe)) return "this runtime's WebAssembly has no threads (shared memory + atomics)";
  return null;
}

/** Replaces `from` by `to` in `text` exactly once, or throws naming what was not found. */
function patchOnce(text: string, from: string, to: string, what: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) {
    throw new Error(
      `wasm threads: ${what} not found exactly once in tfjs-backend-wasm's pthread worker ` +
        `(the patch is written for @tensorflow/tfjs-backend-wasm 4.22.0; run with threads = 1)`,
    );
  }
  return text.slice(0, at) + to + text.slice(at + from.length);
}

/**
 * The bundle-local names the glue refers to (`require$$0 = require('fs')`, ...), as declarations
 * for the worker, read from the tfjs-backend-wasm bundle in `distDir`.
 */
export function glueRequires(glue: string, distDir: string): string {
  const used = [...new Set(glue.match(/require\$\$\d+/g) ?? [])];
  const bundle = readFileSync(join(distDir, "tf-backend-wasm.node.js"), "utf8");
  const decls = ["commonjsGlobal = globalThis"];
  for (const name of used) {
    const m = bundle.match(new RegExp(`var ${name.replace(/\$/g, "\\$")} = require\\('([^']+)'\\);`));
    if (!m) throw new Error(`wasm threads: ${name} is not declared in ${distDir}tf-backend-wasm.node.js`);
    decls.push(`${name} = require(${JSON.stringify(m[1])})`);
  }
  return `var ${decls.join(", ")};\n`;
}

/** The worker script with the glue inlined and Deno's read-only `location` skipped. */
export function patchWorker(worker: string, glue: string): string {
  let w = patchOnce(
    worker,
    'if(typeof e.data.urlOrBlob=="string"){importScripts(e.data.urlOrBlob)}else{var objectUrl=URL.createObjectURL(e.data.urlOrBlob);importScripts(objectUrl);URL.revokeObjectURL(objectUrl)}',
    `(0,eval)(${JSON.stringify(glue)});`,
    "the glue loading (importScripts of e.data.urlOrBlob)",
  );
  w = patchOnce(
    w,
    "Object.assign(global,",
    "(function(t,o){for(const k in o){try{Object.defineProperty(t,k,{value:o[k],configurable:true,writable:true})}" +
      "catch(_){}}return t})(global,",
    "Object.assign(global, ...)",
  );
  return w;
}

/**
 * Initialises the wasm backend with `threads` XNNPACK threads by running `init` (which must call
 * `tf.setBackend("wasm")` and await it) with the patches above in place. `distDir` is the
 * tfjs-backend-wasm dist folder (for the bundle's require names). Throws when threads cannot run
 * here (see {@link wasmThreadsUnsupported}) or when the backend came up with fewer threads.
 */
export async function initThreadedWasm(
  threads: number,
  init: () => Promise<void>,
  opts: { distDir: string },
): Promise<WasmThreadsInfo> {
  if (!Number.isInteger(threads) || threads < 2 || threads > WASM_MAX_THREADS) {
    throw new Error(
      `wasm threads: threads = ${threads}; allowed: 2..${WASM_MAX_THREADS} (1: the single-threaded build)`,
    );
  }
  const why = wasmThreadsUnsupported();
  if (why) throw new Error(`wasm threads: ${why}; run with threads = 1`);
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
  tfwasm.setThreadsCount(threads);

  const OrigBlob = globalThis.Blob;
  const origCreate = URL.createObjectURL;
  const origCpus = os.cpus;
  const texts = new WeakMap<Blob, string>();
  let glue: string | null = null;
  let failure: Error | null = null;
  class RecordingBlob extends OrigBlob {
    constructor(parts?: BlobPart[], options?: BlobPropertyBag) {
      super(parts, options);
      if (parts && parts.every((p) => typeof p === "string")) {
        const s = (parts as string[]).join("");
        texts.set(this, s);
        if (s.startsWith("var WasmBackendModuleThreadedSimd")) glue = glueRequires(s, opts.distDir) + s;
      }
    }
  }
  globalThis.Blob = RecordingBlob;
  URL.createObjectURL = ((b: Blob) => {
    const s = texts.get(b);
    if (s === undefined || !s.includes("e.data.urlOrBlob")) return origCreate(b);
    try {
      if (glue === null) throw new Error("wasm threads: the glue Blob was not made before the worker's");
      // A data: URL worker has no __filename; the worker script names itself with it.
      const code = `var __filename = "tfjs-backend-wasm-threaded-simd.worker.js";\n${patchWorker(s, glue)}`;
      // node:worker_threads in Deno takes a data: URL when it is a URL object.
      return new URL(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`);
    } catch (e) {
      failure = e as Error;
      throw e;
    }
  }) as typeof URL.createObjectURL;
  (os as { cpus: typeof os.cpus }).cpus = () => {
    const c = origCpus();
    return [...c, ...c];
  };
  try {
    await init();
  } catch (e) {
    throw failure ?? e;
  } finally {
    globalThis.Blob = OrigBlob;
    URL.createObjectURL = origCreate;
    (os as { cpus: typeof os.cpus }).cpus = origCpus;
  }
  if (failure) throw failure;
  // An evaluation of the flag started before ours (tfjs's own) can land after it: say it again.
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
  const have = tfwasm.getThreadsCount();
  if (have !== threads) {
    throw new Error(`wasm threads: asked for ${threads}, tfjs-backend-wasm runs ${have}`);
  }
  const mod = (tf.backend() as unknown as { wasm: PThreadModule }).wasm;
  const pt = mod.PThread;
  if (!pt) throw new Error("wasm threads: the threaded glue's PThread is not reachable (Module.PThread)");
  // Running pthreads ref their worker (emscripten's Node path): the pool would keep the process alive.
  for (const w of [...pt.runningWorkers, ...pt.unusedWorkers]) w.unref?.();
  return { threads: have, workers: pt.runningWorkers.length + pt.unusedWorkers.length };
}
