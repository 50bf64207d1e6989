/**
 * Builds lib/backends/wasm_simd/kernels.c into WebAssembly and writes it, base64, into
 * kernels_wasm.ts (committed: users and CI need no compiler). Run after editing kernels.c:
 *
 * ```sh
 * deno task build:wasm           # needs clang with the wasm32 target and wasm-ld (Debian: clang-16 lld-16)
 * deno task build:wasm --check   # rebuild and fail if kernels_wasm.ts would change
 * ```
 *
 * The module runs on tfjs-backend-wasm's heap (it imports that memory), so the build refuses a
 * binary that could write anywhere it was not pointed to: a data section (written at
 * instantiation), a start function, imports other than the memory, or any use of a global (the
 * C stack pointer: a stack frame in linear memory would land on tfjs's tensors). mod_test.ts
 * checks that kernels_wasm.ts was built from the current kernels.c.
 *
 * Environment: `CLANG` picks the compiler (default: the first of clang-16, clang-17, clang-18,
 * clang-15, clang that runs); `wasm-ld` and `llvm-objdump` are looked up beside it.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "../native/build.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
/** The kernels' C source. */
export const WASM_KERNELS_SOURCE: string = join(HERE, "kernels.c");
/** Every source of the binary: kernels.c and the headers it includes (vec4.h, the native kernels' cephes_exp.h). */
export const WASM_KERNELS_SOURCES: readonly string[] = [
  WASM_KERNELS_SOURCE,
  join(HERE, "vec4.h"),
  join(HERE, "../native/kernels/cephes_exp.h"),
];

/** sha256 over {@link WASM_KERNELS_SOURCES}: each file's name and content, in that order. */
export function wasmSourcesSha256(): string {
  return sha256(WASM_KERNELS_SOURCES.map((f) => `${basename(f)}\n${readFileSync(f, "utf8")}\n`).join(""));
}
/** The generated module holding the binary. */
export const WASM_KERNELS_MODULE: string = join(HERE, "kernels_wasm.ts");

/** Compiler flags (part of kernels_wasm.ts, so a change shows in review). */
export const WASM_FLAGS: readonly string[] = [
  "--target=wasm32",
  "-O3",
  "-msimd128",
  "-nostdlib",
  "-ffreestanding",
  "-fno-builtin",
  "-Wall",
  "-Wextra",
  "-Werror",
  "-Wl,--no-entry",
  "-Wl,--import-memory",
  "-Wl,--strip-all",
];

/**
 * Extra flags of the variant for tfjs's threaded build, whose heap is a shared memory (a module
 * must declare an imported memory shared to accept one). Only the import differs: mod_test.ts
 * checks that both binaries hold the same code.
 */
export const WASM_SHARED_FLAGS: readonly string[] = [
  "-matomics",
  "-mbulk-memory",
  "-Wl,--shared-memory",
  "-Wl,--max-memory=4294967296",
];

/** sha256 hex of bytes or text. */
export function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** The `--version` line of a compiler. */
export function compilerVersion(clang: string): string {
  return run(clang, ["--version"]).out.split("\n")[0].trim();
}

/** The clang to build with (the CLANG variable, else the first of clang-16..18, clang-15, clang with the wasm32 target), or null. */
export function wasmClang(): string | null {
  const env = Deno.env.get("CLANG");
  for (const c of env ? [env] : ["clang-16", "clang-17", "clang-18", "clang-15", "clang"]) {
    if (run(c, ["--version"]).ok && run(c, ["--print-targets"]).out.includes("wasm32")) return c;
  }
  return null;
}

/** Top-level sections of a wasm binary: id (1 type, 2 import, 8 start, 11 data, 0 custom, ...) and byte range. */
export function sections(bin: Uint8Array): { id: number; start: number; end: number }[] {
  const out: { id: number; start: number; end: number }[] = [];
  let i = 8; // magic + version
  while (i < bin.length) {
    const start = i, id = bin[i++];
    let size = 0, shift = 0, b: number;
    do {
      b = bin[i++];
      size |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    i += size;
    out.push({ id, start, end: i });
  }
  return out;
}

/** Top-level section ids of a wasm binary. */
export function sectionIds(bin: Uint8Array): number[] {
  return sections(bin).map((s) => s.id);
}

/** Why the binary may not run on tfjs's heap (empty when it may). */
export function unsafeParts(bin: Uint8Array<ArrayBuffer>, disassembly: string): string[] {
  const bad: string[] = [];
  const ids = sectionIds(bin);
  if (ids.includes(11) || ids.includes(12)) bad.push("a data section (static data would be written into tfjs's heap)");
  if (ids.includes(8)) bad.push("a start function");
  const mod = new WebAssembly.Module(bin);
  const imports = WebAssembly.Module.imports(mod);
  if (imports.length !== 1 || imports[0].kind !== "memory") {
    bad.push(`imports other than the memory: ${imports.map((i) => `${i.module}.${i.name}`).join(", ")}`);
  }
  if (/\bglobal\.(get|set)\b/.test(disassembly)) bad.push("a global (the C stack pointer: a stack frame in the heap)");
  if (/\bmemory\.(grow|fill|copy)\b/.test(disassembly)) bad.push("memory.grow/fill/copy (libc-like helpers)");
  return bad;
}

/** Compiles kernels.c with `flags` and checks the binary; returns it. */
function compileChecked(clang: string, objdump: string, flags: readonly string[]): Uint8Array<ArrayBuffer> {
  const tmp = Deno.makeTempDirSync({ prefix: "finelab-wasm-" }), out = join(tmp, "kernels.wasm");
  let bin: Uint8Array<ArrayBuffer>, dis: { ok: boolean; out: string };
  try {
    const r = run(clang, [...flags, "-o", out, WASM_KERNELS_SOURCE]);
    if (!r.ok) throw new Error(`build:wasm: ${clang} failed:\n${r.out}`);
    bin = new Uint8Array(readFileSync(out));
    dis = run(objdump, ["-d", out]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (!dis.ok) throw new Error(`build:wasm: ${objdump} -d failed:\n${dis.out}`);
  const bad = unsafeParts(bin, dis.out);
  if (bad.length) throw new Error(`build:wasm: the binary has ${bad.join("; ")}. Fix kernels.c.`);
  return bin;
}

/** A binary as base64 lines of a string-array literal. */
function base64Lines(bin: Uint8Array): string {
  const lines = Buffer.from(bin).toString("base64").match(/.{1,112}/g) ?? [];
  return lines.map((l) => `  "${l}",`).join("\n");
}

/** Compiles kernels.c (both memory kinds) and returns the generated kernels_wasm.ts text. */
export function buildWasmKernels(): { text: string; bytes: number; compiler: string } {
  const clang = wasmClang();
  if (!clang) {
    throw new Error(
      "build:wasm: no clang with the wasm32 target found (tried CLANG, clang-16..18, clang-15, clang). " +
        "On Debian/Ubuntu: apt-get install clang-16 lld-16",
    );
  }
  const which = run("sh", ["-c", `command -v ${clang}`]);
  const real = which.ok ? realpathSync(which.out.trim()) : clang;
  const objdump = [join(dirname(real), "llvm-objdump"), "llvm-objdump-16", "llvm-objdump"].find((c) =>
    run(c, ["--version"]).ok
  );
  if (!objdump) throw new Error("build:wasm: llvm-objdump not found beside clang (install llvm-16 or lld-16)");
  const bin = compileChecked(clang, objdump, WASM_FLAGS);
  const shared = compileChecked(clang, objdump, [...WASM_FLAGS, ...WASM_SHARED_FLAGS]);
  const compiler = compilerVersion(clang);
  const text = `// Generated by lib/backends/wasm_simd/build.ts (deno task build:wasm) from kernels.c: do not edit.
// Compiler: ${compiler}
// Flags: ${WASM_FLAGS.join(" ")}
// Shared-memory variant: the same plus ${WASM_SHARED_FLAGS.join(" ")}

/** sha256 of the kernels.c + headers this binary was built from (wasm_simd/build.ts wasmSourcesSha256; mod_test.ts compares it). */
export const KERNELS_SOURCE_SHA256 = "${wasmSourcesSha256()}";
/** The compiler that built it (a rebuild is byte-identical only with the same one). */
export const KERNELS_COMPILER = "${compiler}";
/** sha256 of the binary. */
export const KERNELS_WASM_SHA256 = "${sha256(bin)}";
/** The WebAssembly binary (${bin.length} bytes), base64; it imports a non-shared memory. */
export const KERNELS_WASM_BASE64 = [
${base64Lines(bin)}
].join("");
/** sha256 of the shared-memory variant. */
export const KERNELS_WASM_SHARED_SHA256 = "${sha256(shared)}";
/** The variant for tfjs's threaded build (${shared.length} bytes), base64; it imports a shared memory. */
export const KERNELS_WASM_SHARED_BASE64 = [
${base64Lines(shared)}
].join("");
`;
  return { text, bytes: bin.length + shared.length, compiler };
}

if (import.meta.main) {
  const check = Deno.args.includes("--check");
  const { text, bytes, compiler } = buildWasmKernels();
  const old = existsSync(WASM_KERNELS_MODULE) ? readFileSync(WASM_KERNELS_MODULE, "utf8") : "";
  if (check) {
    if (old !== text) {
      console.error(`${WASM_KERNELS_MODULE} is out of date (or built by another compiler): run deno task build:wasm`);
      Deno.exit(1);
    }
    console.log(`kernels_wasm.ts is up to date (${bytes} bytes, ${compiler})`);
  } else {
    writeFileSync(WASM_KERNELS_MODULE, text);
    console.log(`wrote ${WASM_KERNELS_MODULE} (${bytes} bytes of wasm, ${compiler})`);
  }
}
