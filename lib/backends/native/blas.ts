/**
 * The system CBLAS through Deno FFI: OpenBLAS on Linux (`libopenblas.so.0`, or `libblas.so.3`
 * when the Debian alternative points at OpenBLAS), Accelerate on macOS, or any CBLAS named by
 * `FINELAB_BLAS`. `cblas_sgemm` runs directly on the tensors' Float32Arrays (no copies).
 *
 * OpenBLAS picks its kernels by CPU model at load time, and older releases do not know newer CPUs:
 * OpenBLAS 0.3.21 (Debian 12) on an Intel model-207 Xeon falls back to the SSE3 "Prescott" kernels,
 * ~5x slower. Before loading, when `OPENBLAS_CORETYPE` is unset, we therefore set it from the CPU's
 * instruction set (CPUID, asked through the kernels library because Deno refuses /proc/cpuinfo
 * without --allow-all): AVX-512 (F, CD, BW, DQ, VL) -> `SkylakeX`, else AVX2 + FMA -> `Haswell`;
 * either kernel set is valid on any CPU with those instructions. Set `OPENBLAS_CORETYPE` yourself
 * to override (the chosen core is recorded in the backend details).
 *
 * OpenMP threads busy-wait after each parallel region by default; in Deno a process ending while
 * they spin crashes (SIGSEGV at exit), and on a shared machine the spinning steals a core.
 * {@link prepareOpenMpEnv} sets `OMP_WAIT_POLICY=passive` (unless set) before libgomp loads.
 *
 * @module
 */
import { NativeUnavailableError } from "./build.ts";

/** CBLAS enum values (cblas.h). */
export const CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112;

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    result: "void",
  },
  openblas_set_num_threads: { parameters: ["i32"], result: "void", optional: true },
  openblas_get_num_threads: { parameters: [], result: "i32", optional: true },
  openblas_get_config: { parameters: [], result: "pointer", optional: true },
  openblas_get_corename: { parameters: [], result: "pointer", optional: true },
} as const;

type BlasLib = Deno.DynamicLibrary<typeof SYMBOLS>;

/** A loaded CBLAS. */
export interface Blas {
  /** The file that was loaded. */
  path: string;
  /** `openblas`, `accelerate` or `cblas` (unknown implementation). */
  kind: "openblas" | "accelerate" | "cblas";
  /** OpenBLAS `openblas_get_config()` / Accelerate / the file name. */
  config: string;
  /** OpenBLAS kernel core (e.g. `SkylakeX`), or null. */
  core: string | null;
  /** What we set in the environment before loading (empty when nothing). */
  env_set: Record<string, string>;
  /** `C = alpha * op(A) @ op(B) + beta * C`, row-major; arrays may be subarray views. */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    lda: number,
    b: Float32Array,
    ldb: number,
    c: Float32Array,
    ldc: number,
    beta?: number,
  ): void;
  /** Sets BLAS threads (no-op where the library has no such call). */
  setThreads(n: number): void;
  /** BLAS threads, or null when unknown. */
  threads(): number | null;
}

/** Why no CBLAS could be loaded, with the fix. */
export class BlasUnavailableError extends NativeUnavailableError {}

/** Library files tried, in order, for this OS. */
export function blasCandidates(): string[] {
  const env = Deno.env.get("FINELAB_BLAS");
  if (env) return [env];
  if (Deno.build.os === "darwin") {
    return ["/System/Library/Frameworks/Accelerate.framework/Accelerate", "libopenblas.dylib"];
  }
  if (Deno.build.os === "windows") return ["libopenblas.dll", "openblas.dll"];
  return ["libopenblas.so.0", "libopenblas.so", "libblas.so.3"];
}

/** What this module set in the environment (for the record and for child processes). */
const envSet: Record<string, string> = {};

/** Sets `OMP_WAIT_POLICY=passive` unless set; call before any OpenMP library loads. */
export function prepareOpenMpEnv(): void {
  if (Deno.build.os !== "windows" && !Deno.env.get("OMP_WAIT_POLICY")) {
    Deno.env.set("OMP_WAIT_POLICY", "passive");
    envSet.OMP_WAIT_POLICY = "passive";
  }
}

/** The OPENBLAS_CORETYPE we would set for this CPU (null: leave OpenBLAS's own detection). */
export function coreTypeFor(flags: Set<string>): string | null {
  if (["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].every((f) => flags.has(f))) return "SkylakeX";
  if (flags.has("avx2") && flags.has("fma")) return "Haswell";
  return null;
}

const cstr = (p: Deno.PointerValue) => (p ? Deno.UnsafePointerView.getCString(p) : null);

let loaded: Blas | null = null;
let failure: BlasUnavailableError | null = null;

/**
 * Loads the system CBLAS once per process; throws {@link BlasUnavailableError} when there is none.
 * `cpuFeatures` (x86 feature names) picks OPENBLAS_CORETYPE when it is unset (see the module doc).
 */
export function loadBlas(opts: { cpuFeatures?: ReadonlySet<string> } = {}): Blas {
  if (loaded) return loaded;
  if (failure) throw failure;
  prepareOpenMpEnv();
  if (Deno.build.os === "linux" && !Deno.env.get("OPENBLAS_CORETYPE") && opts.cpuFeatures) {
    const core = coreTypeFor(new Set(opts.cpuFeatures));
    if (core) {
      Deno.env.set("OPENBLAS_CORETYPE", core); // read by OpenBLAS when it loads
      envSet.OPENBLAS_CORETYPE = core;
    }
  }
  const tried: string[] = [];
  for (const path of blasCandidates()) {
    let lib: BlasLib;
    try {
      lib = Deno.dlopen(path, SYMBOLS);
    } catch (e) {
      const msg = (e as Error).message;
      if (/Requires ffi access|NotCapable|PermissionDenied/i.test(msg) || (e as Error).name === "NotCapable") {
        failure = new BlasUnavailableError(`loading ${path} needs FFI permission (${msg})`, "run with --allow-ffi");
        throw failure;
      }
      tried.push(`${path}: ${msg.split("\n")[0]}`);
      continue;
    }
    const s = lib.symbols;
    const config = cstr(s.openblas_get_config ? s.openblas_get_config() : null);
    const core = cstr(s.openblas_get_corename ? s.openblas_get_corename() : null);
    const kind = config ? "openblas" : /Accelerate/.test(path) ? "accelerate" : "cblas";
    if (kind === "cblas" && !Deno.env.get("FINELAB_BLAS")) {
      // e.g. Debian's reference libblas.so.3: correct but ~25x slower than OpenBLAS; not worth a backend.
      tried.push(`${path}: not OpenBLAS (reference BLAS?); set FINELAB_BLAS=${path} to use it anyway`);
      lib.close();
      continue;
    }
    const sgemm = s.cblas_sgemm;
    loaded = {
      path,
      kind,
      config: config ?? path,
      core,
      env_set: { ...envSet },
      sgemm(tA, tB, m, n, k, a, lda, b, ldb, c, ldc, beta = 0) {
        sgemm(
          CBLAS_ROW_MAJOR,
          tA ? CBLAS_TRANS : CBLAS_NO_TRANS,
          tB ? CBLAS_TRANS : CBLAS_NO_TRANS,
          m,
          n,
          k,
          1,
          a,
          lda,
          b,
          ldb,
          beta,
          c,
          ldc,
        );
      },
      setThreads(n: number) {
        s.openblas_set_num_threads?.(Math.max(1, Math.floor(n)));
      },
      threads() {
        return s.openblas_get_num_threads ? s.openblas_get_num_threads() : null;
      },
    };
    return loaded;
  }
  const fix = Deno.build.os === "darwin"
    ? "Accelerate ships with macOS; or `brew install openblas` and set FINELAB_BLAS=$(brew --prefix openblas)/lib/libopenblas.dylib"
    : "install OpenBLAS (Debian/Ubuntu: `apt-get install libopenblas0`), or set FINELAB_BLAS to a CBLAS library file";
  failure = new BlasUnavailableError(`no usable CBLAS library (tried ${tried.join("; ")})`, fix);
  throw failure;
}
