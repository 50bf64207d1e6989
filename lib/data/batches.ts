/**
 * Deterministic batches. A training batch is a pure function of (seed, step), so the
 * "data position" saved in a checkpoint is just the step, and a resumed run sees
 * exactly the batches an uninterrupted one would.
 *
 * @module
 */
import { mixSeed, Rng } from "../util/rng.ts";
import { memoryTokens, type TokenSource } from "./shards.ts";

/** Tokens a batch is cut from: token shards ({@link TokenSource}) or an in-memory array. */
export type Tokens = TokenSource | ArrayLike<number>;

function source(tokens: Tokens): TokenSource {
  return "window" in tokens ? tokens as TokenSource : memoryTokens(tokens as ArrayLike<number>);
}

/** Inputs and next-token targets, each `batchSize * seqLen` token ids, row-major [B, T]. */
export interface Batch {
  x: Int32Array;
  y: Int32Array;
  batchSize: number;
  seqLen: number;
}

/** Shape of a batch. */
export interface BatchOptions {
  batchSize: number;
  seqLen: number;
}

function windows(tokens: TokenSource, offsets: number[], seqLen: number): Batch {
  const B = offsets.length, x = new Int32Array(B * seqLen), y = new Int32Array(B * seqLen);
  for (let b = 0; b < B; b++) {
    const w = tokens.window(offsets[b], seqLen + 1);
    for (let t = 0; t < seqLen; t++) {
      x[b * seqLen + t] = w[t];
      y[b * seqLen + t] = w[t + 1];
    }
  }
  return { x, y, batchSize: B, seqLen };
}

function checkLength(tokens: { length: number }, seqLen: number, what: string): number {
  const span = tokens.length - seqLen - 1;
  if (span < 0) {
    throw new RangeError(
      `${what} split has ${tokens.length} tokens, fewer than one sequence of seq_len + 1 = ${seqLen + 1}. ` +
        `Use a larger dataset, a smaller model.seq_len, or a larger data.max_tokens.`,
    );
  }
  return span;
}

/** Training batch number `step` for run seed `seed`: random windows drawn with a PRNG keyed by (seed, step). */
export function trainBatch(tokens: Tokens, seed: number, step: number, opts: BatchOptions): Batch {
  const src = source(tokens);
  const span = checkLength(tokens, opts.seqLen, "training");
  const rng = new Rng(mixSeed(mixSeed(seed, 0x5eed), step));
  const offsets = Array.from({ length: opts.batchSize }, () => rng.int(span + 1));
  return windows(src, offsets, opts.seqLen);
}

/** The fixed validation batches: `count` batches of evenly spaced windows covering the split. */
export function evalBatches(tokens: Tokens, count: number, opts: BatchOptions): Batch[] {
  const src = source(tokens);
  const span = checkLength(tokens, opts.seqLen, "validation");
  const n = count * opts.batchSize;
  const offsets = Array.from({ length: n }, (_, i) => n === 1 ? 0 : Math.floor((i * span) / (n - 1)));
  const out: Batch[] = [];
  for (let i = 0; i < count; i++) {
    out.push(windows(src, offsets.slice(i * opts.batchSize, (i + 1) * opts.batchSize), opts.seqLen));
  }
  return out;
}
