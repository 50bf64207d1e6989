/**
 * Dataset modules: `data/<id>.ts` default-exports `defineDataset({...})` (source,
 * split, tokenizer, pinned hashes). A run's {@link DataConfig} names one by id;
 * {@link resolveData} merges the two into the {@link ResolvedData} the pipeline reads.
 * The id `file` is built in: a local corpus at `data.path`, byte tokens.
 *
 * @module
 */
import { join, resolve } from "node:path";
import type { DataConfig } from "../core/config.ts";
import { REPO_ROOT, toFileUrl } from "../util/paths.ts";
import { DataError } from "./normalize.ts";
import type { DatasetDefinition, FetchFile, ResolvedData, TokenizerSpec } from "./types.ts";

/** The built-in id of an ad-hoc local corpus (`data.path`). */
export const FILE_DATASET = "file";
const ID = /^[a-z0-9][a-z0-9._-]*$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** The vocabulary size a tokenizer spec declares. */
export function specVocabSize(t: TokenizerSpec): number {
  return t.kind === "bytes" ? 256 : t.vocab_size;
}

/** File name a fetched file is stored under in the dataset's fetch folder. */
export function fetchName(f: FetchFile): string {
  return "name" in f ? f.name : f.hf.path.split("/").pop()!;
}

/** Problems of a dataset definition (empty when valid). */
export function definitionProblems(d: DatasetDefinition): string[] {
  const out: string[] = [];
  if (typeof d.id !== "string" || !ID.test(d.id) || d.id === FILE_DATASET) {
    out.push(`id = ${JSON.stringify(d.id)} must be lowercase letters, digits, ".", "_" or "-" (and not "file")`);
  }
  const vf = d.split?.val_fraction, seed = d.split?.seed;
  if (typeof vf !== "number" || !(vf > 0 && vf <= 0.5)) out.push(`split.val_fraction = ${vf} must be in (0, 0.5]`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) out.push(`split.seed = ${seed} must be a u32`);
  const t = d.tokenizer;
  if (t?.kind === "bpe") {
    if (!Number.isInteger(t.vocab_size) || t.vocab_size < 257 || t.vocab_size > 1 << 20) {
      out.push(`tokenizer.vocab_size = ${t.vocab_size} must be an integer in [257, ${1 << 20}] for a bpe tokenizer`);
    }
    if (t.sha256 !== null && !HEX64.test(t.sha256)) out.push(`tokenizer.sha256 must be 64 hex digits or null`);
  } else if (t?.kind === "hf") {
    if (!HEX64.test(t.sha256)) out.push(`tokenizer.sha256 must be 64 hex digits (pin the tokenizer.json)`);
    if (!Number.isInteger(t.vocab_size) || t.vocab_size < 2) out.push(`tokenizer.vocab_size must be an integer >= 2`);
  } else if (t?.kind !== "bytes") out.push(`tokenizer.kind must be "bytes", "bpe" or "hf"`);
  if (d.dtype !== undefined && !["uint8", "uint16", "uint32"].includes(d.dtype)) {
    out.push(`dtype = ${JSON.stringify(d.dtype)} must be "uint8", "uint16" or "uint32"`);
  }
  if (d.documents_sha256 !== null && !HEX64.test(d.documents_sha256)) {
    out.push(`documents_sha256 must be 64 hex digits or null`);
  }
  const s = d.source;
  if (s?.kind === "fetch") {
    if (!Array.isArray(s.files) || s.files.length === 0) out.push(`source.files must list at least one file`);
    for (const f of s.files ?? []) {
      if ((f.sha256 === null) !== (f.bytes === null)) out.push(`source.files: pin both sha256 and bytes, or neither`);
      if (f.sha256 !== null && !HEX64.test(f.sha256)) {
        out.push(`source.files: ${fetchName(f)}: sha256 is not 64 hex digits`);
      }
      if (f.bytes !== null && (!Number.isInteger(f.bytes) || f.bytes < 0)) {
        out.push(`source.files: ${fetchName(f)}: bytes must be an integer >= 0`);
      }
    }
  } else if (s?.kind !== "npm" && s?.kind !== "file") out.push(`source.kind must be "npm", "file" or "fetch"`);
  return out;
}

/** Declares a dataset (the default export of `data/<id>.ts`); throws on an invalid declaration. */
export function defineDataset(d: DatasetDefinition): DatasetDefinition {
  const p = definitionProblems(d);
  if (p.length) throw new DataError(`invalid dataset ${d.id}:\n${p.map((x) => `  - ${x}`).join("\n")}`);
  return Object.freeze(d);
}

/** Folders searched for `data/<id>.ts`: the project root's, then the repository's. */
function dataDirs(root: string): string[] {
  return [...new Set([join(resolve(root), "data"), join(REPO_ROOT, "data")])];
}

/** Ids of every dataset module under the data folders (sorted). */
export async function listDatasetIds(root = REPO_ROOT): Promise<string[]> {
  const ids = new Set<string>();
  for (const dir of dataDirs(root)) {
    try {
      for await (const e of Deno.readDir(dir)) {
        const m = /^([a-z0-9][a-z0-9._-]*)\.ts$/.exec(e.name);
        if (e.isFile && m && !m[1].endsWith("_test")) ids.add(m[1]);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return [...ids].sort();
}

/** The dataset module `id` (from the first data folder that has it). Unknown ids list the known ones. */
export async function loadDefinition(id: string, root = REPO_ROOT): Promise<{ def: DatasetDefinition; dir: string }> {
  if (ID.test(id)) {
    for (const dir of dataDirs(root)) {
      const file = join(dir, `${id}.ts`);
      try {
        await Deno.stat(file);
      } catch {
        continue;
      }
      const mod = await import(toFileUrl(file).href);
      const def = mod.default as DatasetDefinition | undefined;
      if (!def || typeof def !== "object" || def.id !== id) {
        throw new DataError(`${file} must default-export defineDataset({ id: "${id}", ... })`);
      }
      return { def, dir };
    }
  }
  const known = [...await listDatasetIds(root), FILE_DATASET];
  throw new DataError(
    `data.dataset = ${JSON.stringify(id)} is not a known dataset; known: ${known.join(", ")} ` +
      `(a dataset is a module data/<id>.ts; \`deno task data list\` shows them)`,
  );
}

/** Where fetched files of dataset `id` live under a cache base (results/ by default). */
export function fetchDir(cacheBase: string, id: string): string {
  return join(cacheBase, "data", "fetch", id);
}

/** Options of {@link resolveData}. */
export interface ResolveOptions {
  root?: string;
  /** Cache base holding fetched files (`<cacheBase>/data/fetch/<id>/`). */
  cacheBase: string;
}

/** Merges a run's data config with its dataset definition. */
export async function resolveData(cfg: DataConfig, opts: ResolveOptions): Promise<ResolvedData> {
  const root = opts.root ?? REPO_ROOT;
  const common = { max_tokens: cfg.max_tokens };
  if (cfg.dataset === FILE_DATASET) {
    return {
      dataset: FILE_DATASET,
      source: "file",
      path: cfg.path,
      text_field: cfg.text_field,
      val_fraction: cfg.val_fraction ?? 0.1,
      split_seed: cfg.split_seed ?? 0,
      tokenizer: { kind: "bytes" },
      tokenizer_dir: null,
      documents_sha256: null,
      dtype: null,
      ...common,
    };
  }
  if (cfg.path !== null) {
    throw new DataError(
      `data.path = ${JSON.stringify(cfg.path)} is only read when data.dataset = "file" ` +
        `(data.dataset is ${JSON.stringify(cfg.dataset)}); set data.path=null`,
    );
  }
  const { def, dir } = await loadDefinition(cfg.dataset, root);
  const s = def.source;
  const fetched = s.kind === "fetch" ? fetchDir(opts.cacheBase, def.id) : null;
  if (s.kind === "fetch") {
    for (const f of s.files) {
      if (f.sha256 === null) {
        throw new DataError(
          `dataset ${def.id} declares ${
            fetchName(f)
          } without a pinned sha256: run \`deno task data fetch ${def.id}\`, ` +
            `which prints its sha256 and size, and pin them in data/${def.id}.ts`,
        );
      }
      const size = await Deno.stat(join(fetched!, fetchName(f))).then((i) => i.size, () => -1);
      if (size !== f.bytes) {
        throw new DataError(
          `dataset ${def.id} needs ${fetchName(f)} (${f.bytes} bytes), which is not fetched yet into ${fetched}: ` +
            `run \`deno task data fetch ${def.id}\` on a machine with network access`,
        );
      }
    }
  }
  const tokenizerDir = def.tokenizer.kind === "hf" && s.kind === "fetch" &&
      s.files.some((f) => fetchName(f) === (def.tokenizer as { path: string }).path)
    ? fetched
    : dir;
  return {
    dataset: def.id,
    source: s.kind === "npm" ? s.corpus : "file",
    path: s.kind === "file" ? resolve(dir, s.path) : fetched,
    text_field: s.kind === "npm" ? "text" : s.text_field ?? "text",
    val_fraction: cfg.val_fraction ?? def.split.val_fraction,
    split_seed: cfg.split_seed ?? def.split.seed,
    tokenizer: def.tokenizer,
    tokenizer_dir: def.tokenizer.kind === "hf" ? tokenizerDir : null,
    // A narrowed split or a cut changes the content the pin describes only through the split, so the pin still holds.
    documents_sha256: def.documents_sha256,
    dtype: def.dtype ?? null,
    ...common,
  };
}
