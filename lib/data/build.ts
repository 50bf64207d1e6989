/**
 * Building a dataset's cache entry in a work folder: read and normalise the documents,
 * check the pinned content hash, split by document, get the tokenizer (bytes, a trained
 * BPE, or a pinned tokenizer.json), and tokenise each split into shards.
 *
 * Tokenising is resumable: shards end at document boundaries and `progress.json`
 * records, after each shard, how many documents of the split it covers. A build that was
 * interrupted (Ctrl-C, crash) continues from there when the same entry (same key) is
 * built again; shards written before are verified, not redone.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { atomicWrite, atomicWriteJson } from "../util/fs.ts";
import { trainBpe } from "./bpe.ts";
import { specVocabSize } from "./define.ts";
import { hashJson, manifestHash, sha256Hex } from "./hash.ts";
import { DataError, NORMALIZATION } from "./normalize.ts";
import { dtypeFor, ShardWriter, type SplitShards, TokenStream } from "./shards.ts";
import type { SourcePlan } from "./sources.ts";
import { splitDocuments } from "./split.ts";
import { ByteTokenizer, DOCUMENT_SEPARATOR, HfTokenizer, type Tokenizer } from "./tokenizer.ts";
import type { DataManifest, DocumentInfo, ResolvedData } from "./types.ts";

/** Reports long work: `phase` (e.g. "tokenize train"), units done and total. */
export type ProgressFn = (phase: string, done: number, total: number) => void;

/** tokens.json: the shards of both splits, tied to the manifest. */
export interface TokensMeta {
  format: number;
  manifest_hash: string;
  train: SplitShards;
  val: SplitShards;
}

interface Progress {
  key: string;
  tokenizer_sha256: string | null;
  splits: Partial<Record<"train" | "val", { docs: number; shards: SplitShards; done: boolean }>>;
}

/** What {@link buildEntry} needs. */
export interface BuildInput {
  resolved: ResolvedData;
  plan: SourcePlan;
  /** Identity of the entry; a work folder with another key is started afresh. */
  key: string;
  log: (m: string) => void;
  progress?: ProgressFn;
  /** Tokens per shard (default 2^26). */
  shardTokens?: number;
}

/** The tokenizer of `r`, training (bpe) on the training documents when needed; pins are checked. */
async function entryTokenizer(r: ResolvedData, trainTexts: () => string[], work: string, b: BuildInput) {
  const t = r.tokenizer;
  if (t.kind === "bytes") return { tok: new ByteTokenizer() as Tokenizer, sha256: null, json: null };
  let json: string;
  let what: string;
  if (t.kind === "hf") {
    what = resolve(r.tokenizer_dir ?? ".", t.path);
    try {
      json = await Deno.readTextFile(what);
    } catch (e) {
      throw new DataError(`tokenizer file ${what} of dataset ${r.dataset} cannot be read: ${(e as Error).message}`);
    }
  } else {
    what = join(work, "tokenizer.json");
    const prior = await Deno.readTextFile(what).catch(() => null);
    if (prior !== null) {
      json = prior;
      b.log(`data: reusing the BPE tokenizer trained before the interruption (${what})`);
    } else {
      const t0 = performance.now();
      json = trainBpe(trainTexts(), t.vocab_size, {
        onProgress: (d, n) => b.progress?.(`train bpe ${t.vocab_size}`, d, n),
      });
      b.log(`data: trained a ${t.vocab_size}-token BPE in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
  const sha256 = sha256Hex(json);
  const pinned = t.sha256;
  if (pinned !== null && sha256 !== pinned) {
    throw new DataError(
      `tokenizer of dataset ${r.dataset} has sha256 ${sha256}, but the dataset pins ${pinned} ` +
        `(${t.kind === "bpe" ? "the trained BPE differs: the training split or the trainer changed" : what}); ` +
        `refusing to use it`,
    );
  }
  const tok = new HfTokenizer(json, what);
  if (tok.vocabSize !== specVocabSize(t)) {
    throw new DataError(
      `tokenizer ${what} has ${tok.vocabSize} tokens but dataset ${r.dataset} declares vocab_size ${specVocabSize(t)}`,
    );
  }
  if (t.kind === "bpe") await atomicWrite(join(work, "tokenizer.json"), json);
  return { tok: tok as Tokenizer, sha256, json };
}

/**
 * Builds the entry in `work` (created if needed): shards, tokens.json and tokenizer.json,
 * and returns the manifest (not written: the caller writes it last to mark the entry complete).
 */
export async function buildEntry(b: BuildInput, work: string): Promise<{ manifest: DataManifest; meta: TokensMeta }> {
  const r = b.resolved;
  const t0 = performance.now();
  const content = await b.plan.read();
  const enc = new TextEncoder();
  const docs = content.documents.map((d) => ({ id: d.id, text: d.text, utf8: enc.encode(d.text) }));
  const documents_sha256 = hashJson(docs.map((d) => [d.id, sha256Hex(d.utf8)]));
  if (r.documents_sha256 !== null && documents_sha256 !== r.documents_sha256) {
    throw new DataError(
      `the documents of dataset ${r.dataset} hash to ${documents_sha256}, but the dataset pins ` +
        `${r.documents_sha256}: the source changed. Refusing to build it (update the pin only if the change is intended)`,
    );
  }
  const split = splitDocuments(docs.map((d) => d.id), r.val_fraction, r.split_seed);
  const valIds = new Set(split.val);
  const documents: DocumentInfo[] = docs.map((d) => ({
    id: d.id,
    bytes: d.utf8.length,
    sha256: sha256Hex(d.utf8),
    split: valIds.has(d.id) ? "val" : "train",
  }));
  await Deno.mkdir(work, { recursive: true });
  const progressPath = join(work, "progress.json");
  let prog = JSON.parse(await Deno.readTextFile(progressPath).catch(() => "null")) as Progress | null;
  if (prog?.key !== b.key) prog = null;

  const { tok, sha256: tokSha } = await entryTokenizer(
    r,
    () => docs.filter((d) => !valIds.has(d.id)).map((d) => d.text),
    work,
    b,
  );
  if (prog && prog.tokenizer_sha256 !== tokSha) prog = null;
  prog ??= { key: b.key, tokenizer_sha256: tokSha, splits: {} };
  const dtype = r.dtype ?? dtypeFor(tok.vocabSize);
  if (tok.vocabSize > 2 ** (dtype === "uint8" ? 8 : dtype === "uint16" ? 16 : 32)) {
    throw new DataError(
      `dataset ${r.dataset}: a vocabulary of ${tok.vocabSize} tokens does not fit the token dtype ${dtype}`,
    );
  }
  const sep = Array.from(tok.encode(DOCUMENT_SEPARATOR));
  const shardTokens = b.shardTokens ?? 2 ** 26;
  const out: Partial<Record<"train" | "val", SplitShards>> = {};
  for (const s of ["train", "val"] as const) {
    const ds = docs.filter((d) => valIds.has(d.id) === (s === "val"));
    const totalBytes = ds.reduce((n, d) => n + d.utf8.length, 0);
    let done = prog.splits[s];
    if (done?.done) {
      await (await TokenStream.open(work, done.shards)).close(); // verified, kept
      out[s] = done.shards;
      continue;
    }
    if (done) {
      const ok = await TokenStream.open(work, done.shards).then((t) => (t.close(), true), () => false);
      if (!ok) done = undefined;
      else b.log(`data: resuming ${s} tokenisation at document ${done.docs}/${ds.length}`);
    }
    const w = new ShardWriter(work, s, { dtype, shardTokens, done: done?.shards });
    let bytes = ds.slice(0, done?.docs ?? 0).reduce((n, d) => n + d.utf8.length, 0);
    const cap = r.max_tokens ?? Infinity;
    for (let i = done?.docs ?? 0; i < ds.length && w.tokens < cap; i++) {
      const piece = tok.encode(ds[i].text);
      const buffered = w.tokens - w.written.tokens;
      if (buffered > 0 && buffered + piece.length + (i > 0 ? sep.length : 0) > shardTokens) {
        await w.flush();
        prog.splits[s] = { docs: i, shards: w.written, done: false };
        await atomicWriteJson(progressPath, prog);
      }
      if (i > 0) await w.push(sep.slice(0, cap - w.tokens));
      await w.push(w.tokens + piece.length > cap ? piece.subarray(0, cap - w.tokens) : piece);
      bytes += ds[i].utf8.length;
      b.progress?.(`tokenize ${s}`, bytes, totalBytes);
    }
    out[s] = await w.finish();
    prog.splits[s] = { docs: ds.length, shards: out[s]!, done: true };
    await atomicWriteJson(progressPath, prog);
  }
  const body: Omit<DataManifest, "hash"> = {
    dataset: r.dataset,
    source: r.source,
    origin: content.origin,
    normalization: NORMALIZATION,
    tokenizer: tok.description,
    tokenizer_sha256: tokSha,
    vocab_size: tok.vocabSize,
    val_fraction: r.val_fraction,
    split_seed: r.split_seed,
    max_tokens: r.max_tokens,
    documents_sha256,
    documents,
    train_tokens: out.train!.tokens,
    val_tokens: out.val!.tokens,
  };
  const manifest: DataManifest = { hash: manifestHash(body), ...body };
  const meta: TokensMeta = { format: 2, manifest_hash: manifest.hash, train: out.train!, val: out.val! };
  await atomicWriteJson(join(work, "tokens.json"), meta);
  await Deno.remove(progressPath).catch(() => {});
  b.log(
    `data: built ${r.dataset} (${documents.length} documents, ${manifest.train_tokens} train / ` +
      `${manifest.val_tokens} val tokens) in ${(performance.now() - t0).toFixed(0)} ms`,
  );
  return { manifest, meta };
}
