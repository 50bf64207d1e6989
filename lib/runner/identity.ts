/**
 * Run identity: a run's hash is sha256 over the canonical JSON (lib/core/hash.ts) of its
 * {@link HashInputs} (lib/core/records.ts): the resolved config, the bytes of the code that can change
 * its numbers, the exact npm versions and integrity hashes of the packages that code imports (from
 * deno.lock), the dataset manifest hash, the backend and the tfjs version.
 *
 * "The code that can change its numbers" ({@link runCode}) is the import graph, following value
 * imports only (a type-only import is erased and cannot change a result), of three roots: the trainer
 * `lib/train/mod.ts`, the run's FFN variant `lib/models/ffn/<kind>.ts` and its backend's setup
 * `lib/backends/setup/<backend>.ts` (plus the native kernels' C source on native). The transformer and
 * `initBackend` load the variant and the backend by computed dynamic imports, so no run's hash holds
 * another variant's or another backend's files, nor the store, plots, reports, runner or CLI.
 *
 * The graph is read in-process (lib/util/imports.ts), without a `deno info` subprocess;
 * `identity_test.ts` checks it against `deno info` on the whole tree.
 *
 * @module
 */
import { relative, resolve } from "node:path";
import type { ConcreteBackend } from "../core/config.ts";
import type { FfnKind } from "../core/config.ts";
import { sha256Hex } from "../core/hash.ts";
import { parseImports } from "../util/imports.ts";
import { fromFileUrl } from "../util/paths.ts";

/** Bump when the set or meaning of hash inputs changes: old cache entries then miss on purpose. */
export const KEY_SCHEMA = 2;

/** What a module graph contributes to a hash. */
export interface CodeGraph {
  /** Repo-relative path -> sha256 of the file's bytes. */
  code: Record<string, string>;
  /** npm package keys (as in deno.lock's `npm` section) reachable from the roots. */
  npm: string[];
}

/** Options of {@link moduleGraph}. */
export interface GraphOptions {
  /** The project root (holds deno.json and deno.lock). */
  repoRoot: string;
  /** Follow `import type` edges too (the full graph, as `deno info` shows it). Default false. */
  types?: boolean;
}

interface Lock {
  specifiers?: Record<string, string>;
  npm?: Record<string, { integrity?: string; dependencies?: string[] }>;
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(path)) as T;
}

/** deno.lock's key of the npm package an `npm:name@range` specifier resolves to. */
function npmKey(spec: string, lock: Lock): string | null {
  const base = spec.match(/^npm:\/?((?:@[^/]+\/)?[^/@]+)(?:@([^/]+))?/);
  if (!base) return null;
  const name = base[1];
  const resolved = lock.specifiers?.[`npm:${name}${base[2] ? `@${base[2]}` : ""}`];
  if (resolved) return `${name}@${resolved}`;
  return Object.keys(lock.npm ?? {}).find((k) => k.startsWith(`${name}@`)) ?? null;
}

/**
 * Local modules (with the sha256 of their bytes) and npm packages (with their transitive
 * dependencies, from deno.lock) reachable from `roots` by static and literal dynamic imports. A local
 * import that does not exist, or a bare specifier that neither deno.json nor deno.lock resolves, is an
 * error naming the importing file, not a silent gap.
 */
export async function moduleGraph(roots: string[], opts: GraphOptions): Promise<CodeGraph> {
  const { repoRoot } = opts;
  const config = await readJson<{ imports?: Record<string, string> }>(`${repoRoot}/deno.json`);
  const lock = await readJson<Lock>(`${repoRoot}/deno.lock`).catch(() => ({} as Lock));
  const imports = config.imports ?? {};
  const code: Record<string, string> = {};
  const npm = new Set<string>();
  const errors: string[] = [];
  const queue = roots.map((r) => resolve(r));
  const seen = new Set<string>();
  while (queue.length) {
    const file = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(file);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      errors.push(`${relative(repoRoot, file)}: module not found`);
      continue;
    }
    code[relative(repoRoot, file)] = sha256Hex(bytes);
    const dir = file.slice(0, file.lastIndexOf("/"));
    for (const edge of parseImports(new TextDecoder().decode(bytes))) {
      if (edge.typeOnly && !opts.types) continue;
      const s = edge.specifier;
      if (s.startsWith("./") || s.startsWith("../")) queue.push(resolve(dir, s));
      else if (s.startsWith("file:")) queue.push(fromFileUrl(s));
      else if (s.startsWith("/")) queue.push(s);
      else if (s.startsWith("node:")) continue;
      else {
        const mapped = s.startsWith("npm:") ? s : Object.entries(imports)
          .find(([k]) => s === k || s.startsWith(`${k}/`))?.[1];
        const key = mapped ? npmKey(mapped, lock) : null;
        if (key) npm.add(key);
        else {errors.push(
            `${relative(repoRoot, file)}: cannot resolve ${JSON.stringify(s)} (not in deno.json or deno.lock)`,
          );}
      }
    }
  }
  if (errors.length) throw new Error(`Cannot resolve the imports of ${roots.join(", ")}:\n  ${errors.join("\n  ")}`);
  // Transitive npm dependencies: deno.lock names a dependency by name (or name@version when several).
  const keys = Object.keys(lock.npm ?? {});
  const pending = [...npm];
  while (pending.length) {
    for (const d of lock.npm?.[pending.pop()!]?.dependencies ?? []) {
      const matches = lock.npm?.[d] ? [d] : keys.filter((k) => k.startsWith(`${d}@`) || k.startsWith(`${d}_`));
      for (const k of matches) if (!npm.has(k)) (npm.add(k), pending.push(k));
    }
  }
  return { code, npm: [...npm].sort() };
}

/**
 * Folder of the native backend's kernels: compiled, not imported, so for native runs each of its
 * `.c` and `.h` files is hashed by name (repository-relative path).
 */
export const NATIVE_KERNELS = "lib/backends/native/kernels";

/** The roots of a run's code: the trainer, its FFN variant and its backend's setup module. */
export function runRoots(run: { kind: FfnKind | string; backend: ConcreteBackend }, repoRoot: string): string[] {
  return [
    resolve(repoRoot, "lib/train/mod.ts"),
    resolve(repoRoot, `lib/models/ffn/${run.kind}.ts`),
    resolve(repoRoot, `lib/backends/setup/${run.backend}.ts`),
  ];
}

/**
 * The code that can change a run's numbers: {@link moduleGraph} of {@link runRoots}, plus the
 * native kernels' C sources for native runs.
 */
export async function runCode(
  run: { kind: FfnKind | string; backend: ConcreteBackend },
  opts: { repoRoot: string },
): Promise<CodeGraph> {
  const g = await moduleGraph(runRoots(run, opts.repoRoot), opts);
  if (run.backend === "native") {
    const dir = resolve(opts.repoRoot, NATIVE_KERNELS);
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => /\.[ch]$/.test(n)).sort();
    for (const n of names) g.code[`${NATIVE_KERNELS}/${n}`] = sha256Hex(await Deno.readFile(`${dir}/${n}`));
  }
  return g;
}

/** npm package key -> integrity from deno.lock; a package missing from the lock is an error. */
export async function lockedIntegrity(pkgs: string[], opts: { repoRoot: string }): Promise<Record<string, string>> {
  const lock = JSON.parse(await Deno.readTextFile(`${opts.repoRoot}/deno.lock`)) as {
    npm?: Record<string, { integrity?: string }>;
  };
  const out: Record<string, string> = {};
  const missing: string[] = [];
  for (const p of pkgs) {
    const entry = lock.npm?.[p] ?? lock.npm?.[p.replace(/_.*$/, "")];
    if (entry?.integrity) out[p] = entry.integrity;
    else missing.push(p);
  }
  if (missing.length) {
    throw new Error(
      `deno.lock has no integrity for: ${missing.join(", ")}. Run \`deno install\` and commit deno.lock.`,
    );
  }
  return out;
}

/** Exact version of an npm package as locked in deno.lock (e.g. tfjs -> "4.22.0"). */
export async function lockedVersion(name: string, opts: { repoRoot: string }): Promise<string> {
  const lock = JSON.parse(await Deno.readTextFile(`${opts.repoRoot}/deno.lock`)) as {
    specifiers?: Record<string, string>;
  };
  for (const [spec, resolved] of Object.entries(lock.specifiers ?? {})) {
    if (spec.startsWith(`npm:${name}@`)) return resolved.replace(/_.*$/, "");
  }
  throw new Error(`deno.lock does not pin npm:${name}`);
}
