/**
 * Run identity: sha256 over a canonical serialization of everything that determines
 * a run's result (see {@link HashInputs} in lib/runner/records.ts): the resolved config,
 * the bytes of every local module the trainer and the run's FFN variant import, the
 * exact npm versions and integrity hashes of the packages in that graph (from
 * deno.lock), the dataset manifest hash, the backend and the tfjs version.
 *
 * Canonical JSON is RFC 8785 (npm `canonicalize`): key order does not matter, numbers
 * have one spelling. Values JSON cannot represent exactly (NaN, Infinity, undefined,
 * functions, Map/Set, bigint) are rejected rather than silently dropped.
 *
 * @module
 */
import canonicalize from "canonicalize";
import { createHash } from "node:crypto";
import { relative } from "node:path";
import { fromFileUrl, toFileUrl } from "../util/paths.ts";
import { denoBinary } from "../util/deno_bin.ts";

/** Bump when the set or meaning of hash inputs changes: old cache entries then miss on purpose. */
export const KEY_SCHEMA = 1;

/** sha256 hex of text or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Canonical JSON (RFC 8785) of a plain value; throws on values JSON cannot carry exactly. */
export function canonicalJson(value: unknown): string {
  const check = (v: unknown, path: string): void => {
    if (v === null || typeof v === "string" || typeof v === "boolean") return;
    if (typeof v === "number") {
      if (!Number.isFinite(v)) throw new TypeError(`cannot hash ${path || "value"} = ${v}: not a finite number`);
      return;
    }
    if (Array.isArray(v)) return v.forEach((x, i) => check(x, `${path}[${i}]`));
    if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) check(x, path ? `${path}.${k}` : k);
      return;
    }
    const what = typeof v === "object" ? (v as object).constructor?.name ?? "object" : typeof v;
    throw new TypeError(`cannot hash ${path || "value"}: ${what} is not plain JSON data`);
  };
  check(value, "");
  return canonicalize(value) as string;
}

/** sha256 of the canonical JSON of a value. */
export function hashValue(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

interface DenoInfoModule {
  kind: string;
  specifier: string;
  local?: string;
  error?: string;
  npmPackage?: string;
}
interface DenoInfo {
  modules: DenoInfoModule[];
  npmPackages?: Record<string, { name: string; version: string; dependencies: string[] }>;
}

/** What a module graph contributes to a hash. */
export interface CodeGraph {
  /** Repo-relative path -> sha256 of the file's bytes. */
  code: Record<string, string>;
  /** npm package keys (as in deno.lock's `npm` section) reachable from the roots. */
  npm: string[];
}

const graphCache = new Map<string, Promise<CodeGraph>>();

/**
 * Local modules and npm packages reachable from `root` (a file path), via
 * `deno info --json`. A module that fails to resolve is an error, not a silent gap.
 * Results are cached per process.
 */
export function moduleGraph(root: string, opts: { repoRoot: string }): Promise<CodeGraph> {
  const key = `${opts.repoRoot}\0${root}`;
  let p = graphCache.get(key);
  if (!p) {
    p = computeGraph(root, opts.repoRoot);
    graphCache.set(key, p);
    p.catch(() => graphCache.delete(key));
  }
  return p;
}

async function computeGraph(root: string, repoRoot: string): Promise<CodeGraph> {
  const out = await new Deno.Command(denoBinary(), {
    args: ["info", "--json", "--config", `${repoRoot}/deno.json`, toFileUrl(root).href],
    cwd: repoRoot,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno info failed for ${root}:\n${new TextDecoder().decode(out.stderr)}`);
  }
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as DenoInfo;
  const code: Record<string, string> = {};
  const npm = new Set<string>();
  const errors: string[] = [];
  for (const m of info.modules) {
    if (m.error) errors.push(`${m.specifier}: ${m.error}`);
    else if (m.kind === "npm" && m.npmPackage) npm.add(m.npmPackage);
    else if (m.local && m.specifier.startsWith("file:")) {
      const rel = relative(repoRoot, fromFileUrl(m.specifier));
      code[rel] = sha256Hex(await Deno.readFile(m.local));
    }
  }
  if (errors.length) throw new Error(`Cannot resolve the imports of ${root}:\n  ${errors.join("\n  ")}`);
  // Transitive npm dependencies.
  const pkgs = info.npmPackages ?? {};
  const queue = [...npm];
  while (queue.length) {
    const p = queue.pop()!;
    for (const d of pkgs[p]?.dependencies ?? []) if (!npm.has(d)) (npm.add(d), queue.push(d));
  }
  return { code, npm: [...npm].sort() };
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

/** Path of a repo file relative to the repo root (for display and hashing). */
export function repoRelative(path: string, repoRoot: string): string {
  return relative(repoRoot, path);
}
