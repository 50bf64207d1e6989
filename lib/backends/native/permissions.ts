/**
 * The Deno permissions the native backend needs beyond the CLI's own (lib/cli/permissions.ts merges them).
 * FFI is unscoped: Deno's pointer APIs (UnsafePointerView) require the unscoped permission.
 *
 * @module
 */

/**
 * Deno permissions the native backend needs besides the rest of finelab's: unscoped FFI (the
 * system BLAS is opened by its soname, which a path-scoped --allow-ffi does not match), the C
 * compiler (only to build the kernels: first use or `deno task build:native`), the environment
 * variables it reads or sets, and its build folder.
 */
export const NATIVE_PERMISSIONS = {
  ffi: true,
  run: ["cc", "gcc"], // cc is clang on macOS; naming a missing binary makes Deno print a notice on every run
  env: [
    "OMP_WAIT_POLICY",
    "OPENBLAS_CORETYPE",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "FINELAB_BLAS",
    "FINELAB_NATIVE_DIR",
    "CC",
  ],
  write: ["lib/backends/native/build"],
} as const;
