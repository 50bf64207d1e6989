/**
 * FFI bindings of the native kernels library (kernels/*.c, built by build.ts). Every pointer
 * argument is a TypedArray passed as an FFI `buffer` (the tensors' own memory, no copies).
 *
 * @module
 */
import { ensureKernels, type KernelsBuild } from "./build.ts";
import { prepareOpenMpEnv } from "./blas.ts";

/** Must equal FL_ABI_VERSION in kernels/fl.h. */
export const KERNELS_ABI_VERSION = 10;

const SYMBOLS = {
  fl_abi_version: { parameters: [], result: "i32" },
  fl_cpu_features: { parameters: [], result: "i32" },
  fl_has_openmp: { parameters: [], result: "i32" },
  fl_set_threads: { parameters: ["i32"], result: "void" },
  fl_get_threads: { parameters: [], result: "i32" },
  fl_rmsnorm_fwd: { parameters: ["buffer", "buffer", "buffer", "buffer", "i32", "i32", "f32"], result: "void" },
  fl_rmsnorm_bwd: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer", "i32", "i32"],
    result: "void",
  },
  fl_attention_fwd: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "i32", "i32", "i32", "i32", "f32"],
    result: "void",
  },
  fl_attention_bwd: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer", "i32", "i32", "i32", "i32", "f32"],
    result: "void",
  },
  fl_swiglu_fwd: { parameters: ["buffer", "buffer", "i32", "i32"], result: "void" },
  fl_swiglu_bwd: { parameters: ["buffer", "buffer", "buffer", "i32", "i32"], result: "void" },
  fl_gated_mul_fwd: { parameters: ["buffer", "buffer", "buffer", "buffer", "i32", "i32"], result: "void" },
  fl_gated_mul_bwd: { parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "i32", "i32"], result: "void" },
  fl_expert_gate_fwd: { parameters: ["buffer", "buffer", "buffer", "buffer", "i32", "i32", "i32"], result: "void" },
  fl_expert_gate_bwd: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer", "i32", "i32", "i32"],
    result: "void",
  },
  fl_set_sgemm: { parameters: ["buffer"], result: "i32" },
  fl_fd_fwd: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "i32", "i32", "i32", "i32", "i32", "i32", "f32"],
    result: "i32",
  },
  fl_fd_bwd: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "buffer", "i32", "i32", "i32", "i32", "i32", "i32"],
    result: "i32",
  },
  fl_xent_fwd: { parameters: ["buffer", "buffer", "buffer", "buffer", "i32", "i32"], result: "void" },
  fl_xent_bwd: { parameters: ["buffer", "buffer", "buffer", "buffer", "buffer", "i32", "i32"], result: "void" },
  fl_adamw: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "buffer",
      "i32",
      "f32",
      "f32",
      "f32",
      "f32",
      "f32",
      "f32",
      "f32",
      "f32",
      "f32",
    ],
    result: "void",
  },
  fl_sgemm_batch: { parameters: ["buffer", "buffer", "i32"], result: "i32" },
  fl_moe_prog: { parameters: ["buffer", "buffer", "i32"], result: "i32" },
  fl_sumsq_many: { parameters: ["buffer", "buffer", "buffer", "i32"], result: "void" },
  fl_route_counts: { parameters: ["buffer", "buffer", "i32", "i32", "i32"], result: "void" },
  fl_balance_fwd: { parameters: ["buffer", "buffer", "i32", "i32", "i32", "f32"], result: "f32" },
  fl_balance_bwd: { parameters: ["f32", "buffer", "buffer", "buffer", "i32", "i32", "i32"], result: "void" },
  fl_softmax_grad: { parameters: ["buffer", "buffer", "buffer", "i32", "i32"], result: "void" },
  fl_mask_logits: { parameters: ["buffer", "buffer", "buffer", "i32"], result: "void" },
  fl_add: { parameters: ["buffer", "buffer", "buffer", "i32"], result: "void" },
  fl_mul: { parameters: ["buffer", "buffer", "buffer", "i32"], result: "void" },
  fl_scale: { parameters: ["buffer", "f32", "buffer", "i32"], result: "void" },
  fl_sumsq: { parameters: ["buffer", "i32"], result: "f32" },
  fl_binary: {
    parameters: ["i32", "buffer", "buffer", "buffer", "i32", "buffer", "buffer", "buffer"],
    result: "void",
  },
  fl_reduce_sum: { parameters: ["buffer", "buffer", "i32", "i32", "i32", "f32"], result: "void" },
  fl_unary: { parameters: ["i32", "buffer", "buffer", "i32"], result: "void" },
  fl_softmax: { parameters: ["buffer", "buffer", "i32", "i32"], result: "void" },
  fl_sigmoid_scalar: { parameters: ["buffer", "buffer", "i32"], result: "void" },
  fl_sigmoid_max_ulps: { parameters: ["buffer", "i32"], result: "f64" },
  fl_peak_fma: { parameters: ["i32", "i64"], result: "f64" },
} as const;

/** The loaded library's functions (see kernels/*.c for each one's contract). */
export type KernelSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** CPU feature names of {@link Kernels.cpuFeatures} bits (kernels/core.c fl_cpu_features). */
export const CPU_FEATURES = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"] as const;

/** A loaded kernels library. */
export interface Kernels {
  /** x86 features this CPU has (CPUID), empty elsewhere. */
  cpuFeatures: Set<string>;
  /** The build it came from. */
  build: KernelsBuild;
  /** Whether it was compiled with OpenMP (else single-threaded). */
  openmp: boolean;
  /** The functions. */
  k: KernelSymbols;
}

let loaded: Kernels | null = null;

/**
 * Loads the kernels library (building it first when missing and `build` is not false).
 * Throws NativeBuildError (build.ts) when it is missing and cannot be built.
 */
export function loadKernels(opts: { build?: boolean } = {}): Kernels {
  if (loaded) return loaded;
  prepareOpenMpEnv();
  const build = ensureKernels({ noBuild: opts.build === false });
  const lib = Deno.dlopen(build.path, SYMBOLS);
  const abi = lib.symbols.fl_abi_version();
  if (abi !== KERNELS_ABI_VERSION) {
    lib.close();
    throw new Error(
      `native kernels ${build.path} have ABI ${abi}, this code needs ${KERNELS_ABI_VERSION}: ` +
        "run `deno task build:native --force`",
    );
  }
  const bits = lib.symbols.fl_cpu_features();
  const cpuFeatures = new Set<string>(CPU_FEATURES.filter((_, i) => bits & (1 << i)));
  loaded = { build, cpuFeatures, openmp: lib.symbols.fl_has_openmp() === 1, k: lib.symbols };
  return loaded;
}
