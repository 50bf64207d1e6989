/**
 * Loads a dataset described by a {@link DataConfig}: read the source, normalise, split
 * by document, tokenise, describe it in a {@link DataManifest}, and cache the result.
 *
 * Cache: `<cacheDir>/data/<source>-<key>/` holds `train.bin`, `val.bin` (raw token
 * ids), `tokens.json` (their dtype, length and sha256) and `manifest.json`, each written
 * atomically, manifest last (an entry without it is incomplete and is rebuilt). The key
 * hashes the config, a cheap fingerprint of the inputs (path, size, mtime and inode of
 * each source file; npm name@version and integrity) and the source code of lib/data,
 * so editing an input or this code misses the cache. Token files are checked against
 * their sha256 before use; a corrupt entry is rebuilt, never trusted.
 *
 * @module
 */
import { join, resolve } from "node:path";
import type { DataConfig } from "../core/config.ts";
import { atomicWrite, atomicWriteJson } from "../util/fs.ts";
import { projectPaths, REPO_ROOT } from "../util/paths.ts";
import { hashJson, manifestHash, sha256Hex } from "./hash.ts";
import { DataError, NORMALIZATION } from "./normalize.ts";
import { planSource, type SourcePlan } from "./sources.ts";
import { splitDocuments } from "./split.ts";
import { DOCUMENT_SEPARATOR, getTokenizer } from "./tokenizer.ts";
import type { DataManifest, Dataset, DocumentInfo } from "./types.ts";
import { assertValidData } from "./validate.ts";

/** Options of {@link loadDataset} and {@link datasetManifest}. */
export interface DataOptions {
  /**
   * Project root (default: the repo root): relative data.path and cacheDir resolve against it, and npm
   * corpora are looked for in its node_modules/ (pinned by its deno.lock) before the repo's own.
   */
  root?: string;
  /** Cache base; entries go to `<cacheDir>/data/`. Default: results/ (or $FINELAB_RESULTS). `null` disables the cache. */
  cacheDir?: string | null;
  /** Receives one line per cache hit, miss, rebuild and build time. */
  log?: (message: string) => void;
  /** Fail (DataError) if a split has fewer tokens, e.g. `model.seq_len + 1`. */
  minTokens?: number;
}

/** Bump when the cache layout changes. */
const CACHE_FORMAT = 1;
/** Modules whose code decides the processed result; their bytes are part of the cache key. */
const PIPELINE_MODULES = ["dataset.ts", "sources.ts", "normalize.ts", "split.ts", "tokenizer.ts", "hash.ts"];

interface TokenFileInfo {
  file: string;
  length: number;
  sha256: string;
}
interface TokensMeta {
  format: number;
  manifest_hash: string;
  dtype: "uint8";
  train: TokenFileInfo;
  val: TokenFileInfo;
  fingerprint: unknown;
}

interface Prepared {
  cfg: DataConfig;
  plan: SourcePlan;
  key: string;
  /** Cache entry folder, or null without a cache. */
  dir: string | null;
  log: (message: string) => void;
}

interface Built {
  manifest: DataManifest;
  train: Uint8Array;
  val: Uint8Array;
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

function defaultCacheBase(root: string): string {
  try {
    return projectPaths(root).results;
  } catch {
    return resolve(root, "results"); // no env permission: the default location
  }
}

async function prepare(cfg: DataConfig, opts: DataOptions): Promise<Prepared> {
  assertValidData(cfg);
  const root = resolve(opts.root ?? REPO_ROOT);
  const plan = await planSource(cfg, { root });
  const keyHash = hashJson({ format: CACHE_FORMAT, code: await codeHash(), cfg, fingerprint: plan.fingerprint });
  const key = `${cfg.source}-${keyHash.slice(0, 20)}`;
  const base = opts.cacheDir === null ? null : resolve(root, opts.cacheDir ?? defaultCacheBase(root));
  return { cfg, plan, key, dir: base === null ? null : join(base, "data", key), log: opts.log ?? (() => {}) };
}

/** Concatenates byte arrays with `sep` between them. */
function concatWithSeparator(parts: Uint8Array[], sep: Uint8Array): Uint8Array {
  const total = parts.reduce((s, p) => s + p.length, 0) + Math.max(0, parts.length - 1) * sep.length;
  const out = new Uint8Array(total);
  let o = 0;
  parts.forEach((p, i) => {
    if (i > 0) {
      out.set(sep, o);
      o += sep.length;
    }
    out.set(p, o);
    o += p.length;
  });
  return out;
}

async function build(p: Prepared): Promise<Built> {
  const { cfg } = p;
  const t0 = performance.now();
  const content = await p.plan.read();
  const tok = getTokenizer(cfg.tokenizer);
  const encoder = new TextEncoder();
  const docs = content.documents.map((d) => ({ id: d.id, utf8: encoder.encode(d.text) }));
  // The byte tokenizer's ids are the UTF-8 bytes, so the tokens of a document are `utf8` itself.
  const split = splitDocuments(docs.map((d) => d.id), cfg.val_fraction, cfg.split_seed);
  const valIds = new Set(split.val);
  const documents: DocumentInfo[] = docs.map((d) => ({
    id: d.id,
    bytes: d.utf8.length,
    sha256: sha256Hex(d.utf8),
    split: valIds.has(d.id) ? "val" : "train",
  }));
  const sep = tok.encode(DOCUMENT_SEPARATOR) as Uint8Array;
  const side = (s: "train" | "val") => {
    const all = concatWithSeparator(docs.filter((d) => valIds.has(d.id) === (s === "val")).map((d) => d.utf8), sep);
    return cfg.max_bytes !== null && all.length > cfg.max_bytes ? all.slice(0, cfg.max_bytes) : all;
  };
  const train = side("train"), val = side("val");
  const body: Omit<DataManifest, "hash"> = {
    source: cfg.source,
    origin: content.origin,
    normalization: NORMALIZATION,
    tokenizer: tok.description,
    vocab_size: tok.vocabSize,
    val_fraction: cfg.val_fraction,
    split_seed: cfg.split_seed,
    max_bytes: cfg.max_bytes,
    documents,
    train_tokens: train.length,
    val_tokens: val.length,
  };
  const manifest: DataManifest = { hash: manifestHash(body), ...body };
  p.log(
    `data: built ${cfg.source} (${documents.length} documents, ${train.length} train / ${val.length} val tokens) ` +
      `in ${(performance.now() - t0).toFixed(0)} ms`,
  );
  return { manifest, train, val };
}

async function writeCache(p: Prepared, b: Built): Promise<void> {
  if (p.dir === null) return;
  const info = (file: string, t: Uint8Array): TokenFileInfo => ({ file, length: t.length, sha256: sha256Hex(t) });
  const meta: TokensMeta = {
    format: CACHE_FORMAT,
    manifest_hash: b.manifest.hash,
    dtype: "uint8",
    train: info("train.bin", b.train),
    val: info("val.bin", b.val),
    fingerprint: p.plan.fingerprint,
  };
  await atomicWrite(join(p.dir, "train.bin"), b.train);
  await atomicWrite(join(p.dir, "val.bin"), b.val);
  await atomicWriteJson(join(p.dir, "tokens.json"), meta);
  await atomicWriteJson(join(p.dir, "manifest.json"), b.manifest); // last: marks the entry complete
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

/** The cached token arrays, checked against tokens.json and the manifest, or null (logged) when not usable. */
async function cachedTokens(p: Prepared, m: DataManifest): Promise<{ train: Uint8Array; val: Uint8Array } | null> {
  const dir = p.dir!;
  const meta = await readJson(join(dir, "tokens.json")) as TokensMeta | null | undefined;
  const bad = (why: string) => {
    p.log(`data: cached tokens in ${dir} are not usable (${why}); rebuilding`);
    return null;
  };
  if (!meta || meta.format !== CACHE_FORMAT || meta.manifest_hash !== m.hash || meta.dtype !== "uint8") {
    return bad("tokens.json missing or does not match manifest.json");
  }
  const out: Record<"train" | "val", Uint8Array> = { train: new Uint8Array(), val: new Uint8Array() };
  for (const s of ["train", "val"] as const) {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(join(dir, meta[s].file));
    } catch (e) {
      return bad(`${meta[s].file}: ${(e as Error).message}`);
    }
    if (bytes.length !== meta[s].length || bytes.length !== m[`${s}_tokens`]) {
      return bad(`${meta[s].file} has ${bytes.length} bytes, expected ${meta[s].length}`);
    }
    if (sha256Hex(bytes) !== meta[s].sha256) return bad(`${meta[s].file} sha256 mismatch`);
    out[s] = bytes;
  }
  return out;
}

function checkSize(b: { train: Uint8Array; val: Uint8Array }, cfg: DataConfig, minTokens = 1): void {
  for (const [s, t] of [["training", b.train], ["validation", b.val]] as const) {
    if (t.length < Math.max(1, minTokens)) {
      throw new DataError(
        `the ${s} split of data.source = ${JSON.stringify(cfg.source)} has ${t.length} tokens, fewer than the ` +
          `${Math.max(1, minTokens)} needed. Use a larger dataset, a larger data.max_bytes ` +
          `(now ${cfg.max_bytes ?? "null"}), a different data.val_fraction, or a smaller model.seq_len.`,
      );
    }
  }
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
  const b = await build(p);
  checkSize(b, cfg);
  await writeCache(p, b);
  return b.manifest;
}

/** Loads the dataset `cfg` describes, with its token arrays (from the cache when valid). */
export async function loadDataset(cfg: DataConfig, opts: DataOptions = {}): Promise<Dataset> {
  const p = await prepare(cfg, opts);
  const cached = await cachedManifest(p);
  if (cached) {
    const t = await cachedTokens(p, cached);
    if (t) {
      p.log(`data: cache hit (${p.key})`);
      checkSize(t, cfg, opts.minTokens);
      return { manifest: cached, vocabSize: cached.vocab_size, train: t.train, val: t.val };
    }
  }
  const b = await build(p);
  checkSize(b, cfg);
  await writeCache(p, b);
  checkSize(b, cfg, opts.minTokens);
  return { manifest: b.manifest, vocabSize: b.manifest.vocab_size, train: b.train, val: b.val };
}

/** The cache entry folder `cfg` maps to (whether or not it exists yet), or null without a cache. */
export async function datasetCacheDir(cfg: DataConfig, opts: DataOptions = {}): Promise<string | null> {
  return (await prepare(cfg, opts)).dir;
}
