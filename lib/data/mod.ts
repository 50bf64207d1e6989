/**
 * The data layer: sources (npm corpora, local .txt/.jsonl/.parquet), normalisation,
 * the document-level split, the byte tokenizer, manifests with content hashes, the
 * processed-data cache and deterministic batches.
 *
 * ```ts
 * import { loadDataset, trainBatch } from "./lib/data/mod.ts";
 * const ds = await loadDataset(cfg.data, { minTokens: cfg.model.seq_len + 1 });
 * const batch = trainBatch(ds.train, cfg.seed, step, { batchSize: 16, seqLen: 128 });
 * ```
 *
 * @module
 */
export type { DataManifest, Dataset, DocumentInfo, TokenArray } from "./types.ts";
export { type Batch, type BatchOptions, evalBatches, trainBatch } from "./batches.ts";
export { type DataOptions, datasetCacheDir, datasetManifest, loadDataset } from "./dataset.ts";
export { assertValidData, DATA_SOURCES, TOKENIZERS, validateData } from "./validate.ts";
export { ByteTokenizer, DOCUMENT_SEPARATOR, getTokenizer, type Tokenizer } from "./tokenizer.ts";
export { DataError, decodeText, decodeUtf8, firstInvalidUtf8, NORMALIZATION, normalizeText } from "./normalize.ts";
export { type DocumentSplit, splitDocuments, valCount } from "./split.ts";
export { FILE_FORMATS, LATIN1_FILES } from "./sources.ts";
export { manifestHash } from "./hash.ts";
