/**
 * Fixtures for the training tests: a tiny run config and a small synthetic byte dataset.
 *
 * @module
 */
import { DEFAULT_DATA, DEFAULT_MODEL, DEFAULT_TRAIN, type RunConfig } from "../core/config.ts";
import type { Dataset } from "../data/types.ts";
import { memoryTokens } from "../data/shards.ts";
import { Rng } from "../util/rng.ts";

/** A run small enough for the cpu backend (a few ms per step). */
export function tinyRunConfig(backend: RunConfig["backend"], train: Partial<RunConfig["train"]> = {}): RunConfig {
  return {
    experiment: "test",
    variant: "tiny",
    seed: 3,
    backend,
    data: DEFAULT_DATA,
    model: { ...DEFAULT_MODEL, d_model: 16, n_layers: 2, n_heads: 2, d_ff: 32, seq_len: 16 },
    train: {
      ...DEFAULT_TRAIN,
      steps: 8,
      batch_size: 4,
      lr: 1e-2,
      warmup_steps: 2,
      eval_every: 4,
      eval_batches: 2,
      checkpoint_every: 2,
      log_every: 1,
      ...train,
    },
  };
}

/** Bytes of random sentences from a small vocabulary of words (learnable structure). */
export function syntheticDataset(seed = 1): Dataset {
  const words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and", "runs", "far", "away"];
  const r = new Rng(seed);
  const text = (n: number) => {
    let s = "";
    while (s.length < n) s += words[r.int(words.length)] + (r.int(8) === 0 ? ". " : " ");
    return new TextEncoder().encode(s.slice(0, n));
  };
  const train = text(20_000), val = text(4_000);
  return {
    manifest: {
      hash: "test",
      dataset: "synthetic",
      source: "synthetic",
      origin: {},
      normalization: "none",
      tokenizer: "bytes",
      vocab_size: 256,
      val_fraction: 0.1,
      split_seed: 0,
      max_tokens: null,
      documents_sha256: "",
      tokenizer_sha256: null,
      documents: [],
      train_tokens: train.length,
      val_tokens: val.length,
    },
    vocabSize: 256,
    train: memoryTokens(train),
    val: memoryTokens(val),
  };
}
