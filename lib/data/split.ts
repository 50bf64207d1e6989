/**
 * Document-level train/validation split. Splitting by document (not by chunk) keeps
 * repeated passages of one work out of both sides.
 *
 * @module
 */
import { mixSeed, Rng } from "../util/rng.ts";
import { DataError } from "./normalize.ts";

/** Which documents (by id) go to each split; both lists sorted by id. */
export interface DocumentSplit {
  train: string[];
  val: string[];
}

/** Domain tag mixed into split_seed, so the split stream differs from other uses of the same number. */
const SPLIT_STREAM = 0x5b1d0c5;

/** Plain code-unit order (locale-independent, so every machine sorts alike). */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Number of validation documents: ceil(valFraction * n), clamped to [1, n - 1]. */
export function valCount(n: number, valFraction: number): number {
  // The 1e-9 keeps float noise (0.3 * 10 = 3.0000000000000004) from adding a document.
  return Math.min(n - 1, Math.max(1, Math.ceil(valFraction * n - 1e-9)));
}

/**
 * Splits document ids: sort them, Fisher-Yates shuffle with `Rng(mixSeed(splitSeed, ...))`,
 * the first {@link valCount} go to validation. Deterministic in (ids, valFraction, splitSeed),
 * independent of the input order. Throws a DataError for fewer than 2 or duplicate ids.
 */
export function splitDocuments(ids: readonly string[], valFraction: number, splitSeed: number): DocumentSplit {
  const sorted = [...ids].sort(compareIds);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw new DataError(`duplicate document id ${JSON.stringify(sorted[i])}`);
  }
  const n = sorted.length;
  if (n < 2) {
    throw new DataError(
      `the dataset has ${n} document(s); a document-level train/validation split needs at least 2. ` +
        `Use several files in a directory, or a .jsonl/.parquet file with one document per line/row.`,
    );
  }
  const order = [...sorted];
  const rng = new Rng(mixSeed(splitSeed, SPLIT_STREAM));
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const val = new Set(order.slice(0, valCount(n, valFraction)));
  return { train: sorted.filter((id) => !val.has(id)), val: sorted.filter((id) => val.has(id)) };
}
