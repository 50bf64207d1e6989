/**
 * The data layer: dataset modules (`data/<id>.ts`, {@link defineDataset}), sources (npm
 * corpora, local .txt/.jsonl/.parquet, fetched files), normalisation, the document-level
 * split, tokenizers (bytes, trained byte-level BPE, Hugging Face tokenizer.json), token
 * shards with manifests and content hashes, and deterministic batches.
 *
 * ```ts
 * import { loadDataset, trainBatch } from "./lib/data/mod.ts";
 * const ds = await loadDataset(cfg.data, { minTokens: cfg.model.seq_len + 1 });
 * const batch = trainBatch(ds.train, cfg.seed, step, { batchSize: 16, seqLen: 128 });
 * ```
 *
 * @module
 */
export type {
  DataManifest,
  Dataset,
  DatasetDefinition,
  DocumentInfo,
  FetchFile,
  ResolvedData,
  SourceSpec,
  TokenArray,
  TokenizerSpec,
} from "./types.ts";
export { type Batch, type BatchOptions, evalBatches, type Tokens, trainBatch } from "./batches.ts";
export { cacheBase, closeDataset, type DataOptions, datasetCacheDir, datasetManifest, loadDataset } from "./dataset.ts";
export { type ProgressFn } from "./build.ts";
export {
  defineDataset,
  fetchDir,
  fetchName,
  FILE_DATASET,
  listDatasetIds,
  loadDefinition,
  resolveData,
  specVocabSize,
} from "./define.ts";
export { assertValidData, validateData } from "./validate.ts";
export { ByteTokenizer, DOCUMENT_SEPARATOR, getTokenizer, HfTokenizer, type Tokenizer } from "./tokenizer.ts";
export { trainBpe } from "./bpe.ts";
export { dtypeFor, memoryTokens, ShardWriter, type SplitShards, type TokenSource, TokenStream } from "./shards.ts";
export { DataError, decodeText, decodeUtf8, firstInvalidUtf8, NORMALIZATION, normalizeText } from "./normalize.ts";
export { type DocumentSplit, splitDocuments, valCount } from "./split.ts";
export { FILE_FORMATS, LATIN1_FILES } from "./sources.ts";
export { manifestHash } from "./hash.ts";
