/**
 * The `cpu` backend: tfjs's pure-JS reference kernels (registered by the `@tensorflow/tfjs` import in
 * lib/backends/init.ts).
 *
 * @module
 */
import { type Availability, type BackendDetails, setOrThrow } from "./common.ts";

/** Always available. */
export function availability(): Availability {
  return { ok: true, why: "pure-JS reference backend, always available" };
}

/** Makes cpu the active backend. */
export async function setup(): Promise<BackendDetails> {
  await setOrThrow("cpu", "");
  return { note: "pure-JS reference backend (~1 GFLOP/s): for checks, not training" };
}
