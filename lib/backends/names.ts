/**
 * Backend names: what a user may ask for and what a run executes on. The engine's own vocabulary
 * (no imports), re-exported by lib/core/config.ts for the framework.
 *
 * @module
 */

/** Backends a user may ask for. `auto` is resolved to a concrete one before hashing. */
export type BackendName = "auto" | "tensorflow" | "webgpu" | "native" | "wasm" | "cpu";
/** Backends a run can actually execute on (what is hashed and recorded). */
export type ConcreteBackend = Exclude<BackendName, "auto">;
/** All backend names, in the order `auto` prefers them. */
export const BACKENDS: readonly ConcreteBackend[] = ["tensorflow", "webgpu", "native", "wasm", "cpu"];
