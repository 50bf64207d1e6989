/**
 * Loads the dataset a {@link DataConfig} names: resolve it against its `data/<id>.ts`
 * module, build its cache entry once (lib/data/build.ts) and serve its splits from
 * verified token shards.
 *
 * Cache: `<cacheDir>/data/<dataset>-<key>/` holds the shards (`train-00000.bin`, ...),
 * `tokens.json` (dtype, per-shard length and sha256), `tokenizer.json` (bpe) and
 * `manifest.json`, written last: an entry without it is incomplete. An entry is built in
 * `<entry>.partial/` (resumable) under a lock and renamed into place whole. The key
 * hashes the resolved config, a cheap fingerprint of the inputs (path, size, mtime and
 * inode of each source file; npm name@version and integrity) and the source code of
 * lib/data, so editing an input or this code misses the cache. Shards are checked
 * against their sha256 when opened; a corrupt entry is rebuilt, never trusted. Bad
 * input (a DataError) leaves nothing behind.
 *
 * @module
 */
import { join, resolve } from "node:path";
import type { DataConfig } from "../core/config.ts";
import { projectPaths, REPO_ROOT } from "../util/paths.ts";
import { atomicWriteJson } from "../util/fs.ts";
import { buildEntry, type ProgressFn, type TokensMeta } from "./build.ts";
import { resolveData } from "./define.ts";
import { hashJson, manifestHash, sha256Hex } from "./hash.ts";
import { DataError } from "./normalize.ts";
import { TokenStream } from "./shards.ts";
import { planSource, type SourcePlan } from "./sources.ts";
import type { DataManifest, Dataset, ResolvedData } from "./types.ts";
import { assertValidData } from "./validate.ts";

/** Options of {@link loadDataset} and {@link datasetManifest}. */
export interface DataOptions {
  /**
   * Project root (default: the repo root): relative data.path and cacheDir resolve against it, dataset
   * modules are looked for in its data/ first, and npm corpora in its node_modules/ (pinned by its deno.lock).
   */
  root?: string;
  /** Cache base; entries go to `<cacheDir>/data/`. Default: results/ (or $FINELAB_RESULTS). `null`: no cache. */
  cacheDir?: string | null;
  /** Receives one line per cache hit, miss, rebuild and build time. */
  log?: (message: string) => void;
  /** Receives progress of long steps (BPE training, tokenising), e.g. for a progress bar. */
  progress?: ProgressFn;
  /** Fail (DataError) if a split has fewer tokens, e.g. `model.seq_len + 1`. */
  minTokens?: number;
  /** Tokens per shard file (default 2^26). */
  shardTokens?: number;
}

/** Bump when the cache layout changes. */
const CACHE_FORMAT = 2;
/** Modules whose code decides the processed result; their bytes are part of the cache key. */
const PIPELINE_MODULES = [
  "dataset.ts",
  "build.ts",
  "bpe.ts",
  "shards.ts",
  "sources.ts",
  "normalize.ts",
  "split.ts",
  "tokenizer.ts",
  "hash.ts",
];

interface Prepared {
  resolved: ResolvedData;
  plan: SourcePlan;
  key: string;
  /** Cache entry folder, or null without a cache. */
  dir: string | null;
  log: (message: string) => void;
  opts: DataOptions;
}

let pipelineHash: Promise<string> | null = null;

/** sha256 over the source of the pipeline modules (read once per process). */
function codeHash(): Promise<string> {
  pipelineHash ??= (async () => {
    try {
      const parts = await Promise.all(
        PIPELINE_MODULES.map((m) => Deno.readFile(new URL(`./${m}`, import.meta.url)).then(sha256Hex)),
      );
      return hashJson(parts);
    } catch {
      return `format-${CACHE_FORMAT}`; // not readable as files (e.g. remote import): the format number alone
    }
  })();
  return pipelineHash;
}

/** The cache base `opts` selects (results/ by default), or null for no cache. */
export function cacheBase(opts: DataOptions): string | null {
  const root = resolve(opts.root ?? REPO_ROOT);
  if (opts.cacheDir === null) return null;
  if (opts.cacheDir !== undefined) return resolve(root, opts.cacheDir);
  try {
    return projectPaths(root).results;
  } catch {
    return resolve(root, "results"); // no env permission: the default location
  }
}

async function prepare(cfg: DataConfig, opts: DataOptions): Promise<Prepared> {
  assertValidData(cfg);
  const root = resolve(opts.root ?? REPO_ROOT);
  const base = cacheBase(opts);
  const resolved = await resolveData(cfg, { root, cacheBase: base ?? resolve(root, "results") });
  const plan = await planSource(resolved, { root });
  let tokFile: string | null = null;
  if (resolved.tokenizer.kind === "hf") {
    tokFile = await Deno.readFile(resolve(resolved.tokenizer_dir ?? root, resolved.tokenizer.path)).then(
      sha256Hex,
      () => "missing",
    );
  }
  const fingerprint = { source: plan.fingerprint, tokenizer_file: tokFile };
  const keyHash = hashJson({ format: CACHE_FORMAT, code: await codeHash(), resolved, fingerprint });
  const key = `${resolved.dataset}-${keyHash.slice(0, 20)}`;
  return {
    resolved,
    plan,
    key,
    dir: base === null ? null : join(base, "data", key),
    log: opts.log ?? (() => {}),
    opts,
  };
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    return null; // unreadable or not JSON: corrupt
  }
}

/** The cached manifest, or null (with a log line saying why) when absent or not self-consistent. */
async function cachedManifest(p: Prepared): Promise<DataManifest | null> {
  if (p.dir === null) return null;
  const m = await readJson(join(p.dir, "manifest.json")) as DataManifest | null | undefined;
  if (m === undefined) {
    p.log(`data: cache miss (${p.key})`);
    return null;
  }
  if (m === null || typeof m !== "object" || typeof m.hash !== "string" || manifestHash(m) !== m.hash) {
    p.log(`data: cached manifest in ${p.dir} is corrupt; rebuilding`);
    return null;
  }
  return m;
}

/** Opens both splits of a complete entry, or null (logged) when a file is missing or corrupt. */
async function openEntry(p: Prepared, dir: string, m: DataManifest): Promise<Dataset | null> {
  const meta = await readJson(join(dir, "tokens.json")) as TokensMeta | null | undefined;
  if (!meta || meta.format !== 2 || meta.manifest_hash !== m.hash) {
    p.log(`data: cached tokens in ${dir} are not usable (tokens.json missing or does not match manifest.json)`);
    return null;
  }
  try {
    const train = await TokenStream.open(dir, meta.train);
    const val = await TokenStream.open(dir, meta.val);
    return { manifest: m, vocabSize: m.vocab_size, train, val };
  } catch (e) {
    if (!(e instanceof DataError)) throw e;
    p.log(`data: cached tokens in ${dir} are not usable (${e.message}); rebuilding`);
    return null;
  }
}

function checkSize(m: DataManifest, r: ResolvedData, minTokens = 1): void {
  for (const [s, n] of [["training", m.train_tokens], ["validation", m.val_tokens]] as const) {
    if (n < Math.max(1, minTokens)) {
      throw new DataError(
        `the ${s} split of dataset ${JSON.stringify(r.dataset)} has ${n} tokens, fewer than the ` +
          `${Math.max(1, minTokens)} needed. Use a larger dataset, a larger data.max_tokens ` +
          `(now ${r.max_tokens ?? "null"}), a different data.val_fraction, or a smaller model.seq_len.`,
      );
    }
  }
}

/** Builds the entry of `p` (under a lock, resumable) and moves it into place; returns the opened dataset. */
async function buildAndOpen(p: Prepared): Promise<Dataset> {
  const input = { ...p, progress: p.opts.progress, shardTokens: p.opts.shardTokens };
  if (p.dir === null) {
    const work = await Deno.makeTempDir({ prefix: "finelab-data-" });
    try {
      const { manifest } = await buildEntry(input, work);
      checkSize(manifest, p.resolved);
      return (await openEntryAfterBuild(p, work, manifest))!;
    } finally {
      await Deno.remove(work, { recursive: true }); // open shard files stay readable
    }
  }
  const dir = p.dir;
  await Deno.mkdir(join(dir, ".."), { recursive: true });
  const lock = await Deno.open(`${dir}.lock`, { create: true, write: true });
  try {
    await lock.lock(true);
    const done = await cachedManifest(p); // another process may have built it meanwhile
    if (done) {
      const ds = await openEntry(p, dir, done);
      if (ds) return ds;
    }
    const work = `${dir}.partial`;
    let built;
    try {
      built = await buildEntry(input, work);
      checkSize(built.manifest, p.resolved);
    } catch (e) {
      if (e instanceof DataError) await Deno.remove(work, { recursive: true }).catch(() => {}); // nothing cached
      throw e;
    }
    await atomicWriteJson(join(work, "manifest.json"), built.manifest); // last: marks the entry complete
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.rename(work, dir);
    return (await openEntryAfterBuild(p, dir, built.manifest))!;
  } finally {
    lock.close();
  }
}

async function openEntryAfterBuild(p: Prepared, dir: string, m: DataManifest): Promise<Dataset | null> {
  const ds = await openEntry(p, dir, m);
  if (!ds) throw new Error(`data: the entry just built in ${dir} does not verify`);
  return ds;
}

/**
 * The manifest of the dataset `cfg` describes. From a warm cache this reads one small
 * JSON file (no token files); otherwise it builds and caches the whole dataset.
 */
export async function datasetManifest(cfg: DataConfig, opts: DataOptions = {}): Promise<DataManifest> {
  const p = await prepare(cfg, opts);
  const cached = await cachedManifest(p);
  if (cached) {
    p.log(`data: cache hit (${p.key})`);
    return cached;
  }
  const ds = await buildAndOpen(p);
  closeDataset(ds);
  return ds.manifest;
}

/** Loads the dataset `cfg` describes: its manifest and verified token streams (built when not cached). */
export async function loadDataset(cfg: DataConfig, opts: DataOptions = {}): Promise<Dataset> {
  const p = await prepare(cfg, opts);
  const cached = await cachedManifest(p);
  let ds = cached ? await openEntry(p, p.dir!, cached) : null;
  if (ds) p.log(`data: cache hit (${p.key})`);
  ds ??= await buildAndOpen(p);
  checkSize(ds.manifest, p.resolved, opts.minTokens);
  return ds;
}

/** Closes the shard files of a loaded dataset. */
export function closeDataset(ds: Dataset): void {
  for (const s of [ds.train, ds.val]) if (s instanceof TokenStream) s.close();
}

/** The cache entry folder `cfg` maps to (whether or not it exists yet), or null without a cache. */
export async function datasetCacheDir(cfg: DataConfig, opts: DataOptions = {}): Promise<string | null> {
  return (await prepare(cfg, opts)).dir;
}
