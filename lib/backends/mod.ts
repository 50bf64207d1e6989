/**
 * The tensor engine's entry point: TensorFlow.js backends with finelab's kernel fixes and fused ops.
 * The engine imports nothing of the framework (lib/layers_test.ts checks it).
 *
 * - {@link resolveBackend} (resolve.ts) turns a requested name (`auto` or concrete) into a concrete
 *   backend without training anything; an explicit request for an unavailable backend throws.
 * - {@link initBackend} (init.ts) makes it the active tfjs backend and installs the backend's kernels
 *   (`setup/<name>.ts`, loaded on demand).
 * - Model code uses `ops.ts` (tfjs ops with finelab's fixes) and `fused.ts` (fused ops that fall back
 *   to composite tfjs ops where a backend lacks them).
 *
 * @module
 */
export { type BackendInfo, backendSetup, currentBackend, initBackend, type InitOptions, readValues } from "./init.ts";
export { resolveBackend, type ResolvedBackend } from "./resolve.ts";
export { type BackendName, BACKENDS, type ConcreteBackend } from "./names.ts";
export { wasmDistDir } from "./setup/wasm.ts";
export { defaultWasmThreads } from "./wasm_threads.ts";
