/**
 * Initialising the backend a run executes on: {@link initBackend} makes it the active tfjs backend
 * and installs finelab's kernels for it. Each backend's setup lives in `lib/backends/setup/<name>.ts`
 * and is loaded by a computed dynamic import, so the trainer's import graph (and with it a run's code
 * hash) holds only the backend the run uses.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs"; // registers the cpu backend (which native builds on)
import { BACKENDS, type ConcreteBackend } from "./names.ts";
import type { BackendDetails, BackendSetup, InitOptions } from "./setup/common.ts";

export type { InitOptions } from "./setup/common.ts";

/** What {@link initBackend} set up. */
export interface BackendInfo {
  /** The active tfjs backend. */
  name: ConcreteBackend;
  /** tfjs-core version. */
  tfjs: string;
  /** Backend specifics: simd, threads, adapter, replaced kernels, ... */
  details: BackendDetails;
}

let current: BackendInfo | null = null;

/** The backend {@link initBackend} last set up, or null. */
export function currentBackend(): BackendInfo | null {
  return current && tf.getBackend() === current.name ? current : null;
}

/** The setup module of a backend (`lib/backends/setup/<name>.ts`). */
export function backendSetup(name: ConcreteBackend): Promise<BackendSetup> {
  if (!BACKENDS.includes(name)) {
    throw new Error(`backend = ${JSON.stringify(name)} is not a concrete backend; allowed: ${BACKENDS.join(", ")}`);
  }
  // A computed specifier on purpose: a static one would put every backend in every run's code hash.
  const path = `./setup/${name}.ts`;
  return import(path);
}

/**
 * Makes `name` the active tfjs backend (idempotent), enables prod mode and installs our kernel
 * workarounds. Returns what was set up; call `resolveBackend` (lib/backends/resolve.ts) first for a
 * helpful error when the backend is missing.
 */
export async function initBackend(name: ConcreteBackend, opts: InitOptions = {}): Promise<BackendInfo> {
  const setup = await backendSetup(name);
  setup.check?.(opts); // wasm: its thread pool starts once per process, another count later is an error
  const have = currentBackend();
  if (have && have.name === name) {
    setup.reuse?.(have.details, opts);
    return have;
  }
  tf.enableProdMode();
  const details = await setup.setup(opts);
  current = { name, tfjs: tf.version_core, details };
  return current;
}

/** Reads a tensor's values asynchronously (works on every backend, unlike dataSync on webgpu). */
export async function readValues(t: tf.Tensor): Promise<Float32Array | Int32Array | Uint8Array> {
  return (await t.data()) as Float32Array | Int32Array | Uint8Array;
}
