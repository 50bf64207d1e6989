/**
 * What every backend's setup module (`lib/backends/setup/<name>.ts`) exports, and the helper they share.
 * `initBackend` (lib/backends/init.ts) loads only the module of the backend a run uses, by a computed
 * dynamic import, so a run's code hash covers its own backend's files and no other's.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Backend specifics recorded in the manifest: simd, threads, adapter, replaced kernels, ... */
export type BackendDetails = Record<string, string | number | boolean | null>;

/** Options of `initBackend`. */
export interface InitOptions {
  /**
   * CPU threads. native: BLAS and kernel threads (default 1). wasm: XNNPACK's thread pool (tfjs's
   * threaded build, turned on under Deno by lib/backends/wasm_threads.ts; default
   * `defaultWasmThreads()`, 1 = the single-threaded build); fixed for the process once the
   * wasm backend is up.
   */
  threads?: number;
}

/** Whether a backend can run here. */
export interface Availability {
  ok: boolean;
  /** Why not (or what was found). */
  why: string;
  /** How to make it available (only when !ok). */
  fix?: string;
}

/** A backend's setup module. */
export interface BackendSetup {
  /** Whether the backend can run here (cheap; no training). */
  availability(): Availability | Promise<Availability>;
  /** Makes the backend the active tfjs backend and installs its kernels; returns its details. */
  setup(opts: InitOptions): Promise<BackendDetails>;
  /** Checks the options against a backend that is already registered (before anything else). */
  check?(opts: InitOptions): void;
  /** Applies the options to the backend when it is already the active one (its details updated). */
  reuse?(details: BackendDetails, opts: InitOptions): void;
}

/** `tf.setBackend(name)` and `tf.ready()`, or an error naming the backend and the hint. */
export async function setOrThrow(name: string, hint: string): Promise<void> {
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
