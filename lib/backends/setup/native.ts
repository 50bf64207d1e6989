/**
 * The `native` backend: tfjs-backend-cpu with matmul on the system CBLAS and fused C kernels
 * (lib/backends/native/).
 *
 * @module
 */
import { initNative, NATIVE_BACKEND, nativeAvailability, setNativeThreads } from "../native/mod.ts";
import { type Availability, type BackendDetails, type InitOptions, setOrThrow } from "./common.ts";

/** Available when a CBLAS and the compiled kernels load. */
export function availability(): Availability {
  return nativeAvailability();
}

/** Loads BLAS and the kernels and makes native the active backend. */
export async function setup(opts: InitOptions): Promise<BackendDetails> {
  const info = initNative(opts.threads ?? 1);
  await setOrThrow(NATIVE_BACKEND, "");
  return {
    ...info,
    matmul: "system CBLAS sgemm on the tensors' memory (transpose flags to BLAS)",
    note: "tfjs-backend-cpu kernels, with matmul and the fused model ops native",
  };
}

/** Sets another thread count on the running backend. */
export function reuse(details: BackendDetails, opts: InitOptions): void {
  if (opts.threads !== undefined && opts.threads !== details.threads) {
    setNativeThreads(opts.threads);
    details.threads = Math.max(1, Math.floor(opts.threads));
  }
}
