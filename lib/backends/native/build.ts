/**
 * Builds the native kernels (the C files of lib/backends/native/kernels/, one shared header fl.h)
 * into a shared library with the system C compiler. `deno task build:native` runs this file; the native backend also calls
 * {@link ensureKernels} on first use, so a machine with a compiler builds them on demand.
 *
 * The library's file name carries a hash of everything that determines the binary: the sources,
 * the compiler's `--version`, the flags and the CPU (flags are `-march=native`). So a changed
 * source, compiler or machine gets a fresh build, and two processes building at once write to
 * temp files and rename (the same bytes either way).
 *
 * ```sh
 * deno task build:native            # build if missing, print the path
 * deno task build:native --force    # rebuild
 * ```
 *
 * Environment: `CC` picks the compiler (default: the first of cc, gcc, clang that runs);
 * `FINELAB_NATIVE_DIR` moves the output folder (default lib/backends/native/build/).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import os from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
/** The kernels' source folder: the `.c` files compiled together and the headers they include. */
export const KERNELS_DIR: string = join(HERE, "kernels");

/** The kernels' source files (`.c` and `.h`, sorted by name), absolute paths. */
export function kernelsSources(dir: string = KERNELS_DIR): string[] {
  return readdirSync(dir).filter((f) => /\.[ch]$/.test(f)).sort().map((f) => join(dir, f));
}

/**
 * sha256 (hex) over the kernels' sources: each file's name and content in {@link kernelsSources}'
 * order, so a renamed, added, removed or edited file changes it.
 */
export function kernelsSourceSha(dir: string = KERNELS_DIR): string {
  const h = createHash("sha256");
  for (const f of kernelsSources(dir)) h.update(`${basename(f)}\n`).update(readFileSync(f)).update("\n");
  return h.digest("hex");
}

/** A built (or found) kernels library. */
export interface KernelsBuild {
  /** Absolute path of the shared library. */
  path: string;
  /** Short hash of source + compiler + flags + CPU (also in the file name). */
  hash: string;
  /** {@link kernelsSourceSha} (first 16 hex digits). */
  source_sha: string;
  /** Compiler command and its first `--version` line. */
  compiler: string;
  /** Flags passed to the compiler. */
  flags: string[];
  /** Whether this call compiled it (false: it was already there). */
  built: boolean;
  /** Seconds the compile took (0 when not built). */
  build_s: number;
}

/** Why the native backend cannot run here (no CBLAS, no compiler, ...), with the fix; named after its subclass. */
export class NativeUnavailableError extends Error {
  /** What to do about it. */
  readonly fix: string;
  constructor(message: string, fix: string) {
    super(message);
    this.name = new.target.name;
    this.fix = fix;
  }
}

/** Why the kernels cannot be built, with the fix. */
export class NativeBuildError extends NativeUnavailableError {}

/** Options of {@link ensureKernels}. */
export interface BuildOptions {
  /** Rebuild even when the library exists. */
  force?: boolean;
  /** Output folder (default `$FINELAB_NATIVE_DIR` or lib/backends/native/build/). */
  dir?: string;
  /** Never compile: only return an existing build (throws NativeBuildError when there is none). */
  noBuild?: boolean;
}

/** dlopen/dlsym (kernels/finedeep.c fl_set_sgemm) are in libdl before glibc 2.34; a no-op stub after it. */
const LINK_LIBS = Deno.build.os === "linux" ? ["-ldl"] : [];
const LIB_EXT = Deno.build.os === "darwin" ? "dylib" : Deno.build.os === "windows" ? "dll" : "so";

/** Runs a command to completion: whether it succeeded and its stdout + stderr (or why it could not start). */
export function run(cmd: string, args: string[]): { ok: boolean; out: string } {
  try {
    const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
    const dec = new TextDecoder();
    return { ok: r.success, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
  } catch (e) {
    return { ok: false, out: (e as Error).message };
  }
}

/** The compiler to use and its version line, or null when none runs. */
export function findCompiler(): { cmd: string; version: string } | null {
  const env = Deno.env.get("CC");
  for (const cmd of env ? [env] : ["cc", "gcc", "clang"]) {
    const r = run(cmd, ["--version"]);
    if (r.ok) return { cmd, version: r.out.split("\n")[0].trim() };
  }
  return null;
}

/**
 * What `-march=native` means on this machine: the compiler's predefined macros for it (ISA
 * extensions such as __AVX512F__, for gcc and clang alike; Deno refuses /proc/cpuinfo without
 * --allow-all), so a library built for another CPU is never reused.
 */
function cpuSignature(cc: string): string {
  const r = run(cc, ["-march=native", "-E", "-dM", "-x", "c", "/dev/null"]);
  if (r.ok) {
    return `${Deno.build.arch}\n${r.out.split("\n").filter((l) => l.startsWith("#define __")).sort().join("\n")}`;
  }
  let model = "unknown";
  try {
    model = os.cpus()[0]?.model ?? model;
  } catch { /* no --allow-sys */ }
  return `${Deno.build.arch} ${model}`;
}

/** Flag sets tried in order (OpenMP first; Apple clang has no -fopenmp, so then without). */
function flagSets(): string[][] {
  const common = ["-O3", "-march=native", "-fno-math-errno", "-shared", "-fPIC"];
  return [[...common, "-fopenmp"], common];
}

const sha = (s: string | Uint8Array) => createHash("sha256").update(s).digest("hex");

/** Default output folder. */
export function buildDir(): string {
  return Deno.env.get("FINELAB_NATIVE_DIR") || join(HERE, "build");
}

/**
 * Returns the kernels library for this source, compiler and CPU, compiling it when missing.
 * Throws {@link NativeBuildError} (with a fix) when there is no compiler or the compile fails.
 */
export function ensureKernels(opts: BuildOptions = {}): KernelsBuild {
  const sourceSha = kernelsSourceSha().slice(0, 16);
  const cfiles = kernelsSources().filter((f) => f.endsWith(".c"));
  const cc = findCompiler();
  const dir = opts.dir ?? buildDir();
  if (!cc) {
    throw new NativeBuildError(
      "no C compiler found (tried $CC, cc, gcc, clang), so the native kernels cannot be built",
      "install one (Debian/Ubuntu: `apt-get install gcc`; macOS: `xcode-select --install`), then run `deno task build:native`",
    );
  }
  const sig = cpuSignature(cc.cmd);
  const errors: string[] = [];
  for (const flags of flagSets()) {
    const hash = sha([sourceSha, cc.cmd, cc.version, flags.join(" "), sig].join("\n")).slice(0, 12);
    const path = join(dir, `libfinelab_native-${hash}.${LIB_EXT}`);
    const info = { path, hash, source_sha: sourceSha, compiler: `${cc.cmd} (${cc.version})`, flags };
    if (existsSync(path) && !opts.force) return { ...info, built: false, build_s: 0 };
    if (opts.noBuild) continue;
    mkdirSync(dir, { recursive: true });
    const tmp = `${path}.tmp-${Deno.pid}`;
    const t0 = performance.now();
    const r = run(cc.cmd, [...flags, "-o", tmp, ...cfiles, "-lm", ...LINK_LIBS]);
    if (r.ok && existsSync(tmp)) {
      renameSync(tmp, path);
      return { ...info, built: true, build_s: (performance.now() - t0) / 1000 };
    }
    rmSync(tmp, { force: true });
    errors.push(`${cc.cmd} ${flags.join(" ")}: ${r.out.trim().split("\n").slice(0, 6).join(" | ")}`);
  }
  if (opts.noBuild) {
    throw new NativeBuildError(
      `the native kernels are not built for this source/compiler/CPU (looked in ${dir})`,
      "run `deno task build:native`",
    );
  }
  throw new NativeBuildError(
    `compiling ${KERNELS_DIR}/*.c failed:\n  ${errors.join("\n  ")}`,
    "fix the compiler error above (or set CC to another compiler), then run `deno task build:native`",
  );
}

if (import.meta.main) {
  const force = Deno.args.includes("--force");
  try {
    const b = ensureKernels({ force });
    console.log(
      b.built
        ? `built ${b.path} in ${b.build_s.toFixed(1)} s with ${b.compiler} ${b.flags.join(" ")}`
        : `up to date: ${b.path} (${b.compiler} ${b.flags.join(" ")}; --force rebuilds)`,
    );
  } catch (e) {
    if (e instanceof NativeBuildError) {
      console.error(`error: ${e.message}\nTo fix: ${e.fix}`);
      Deno.exit(1);
    }
    throw e;
  }
}
