/**
 * Typed configuration of one training run: the single source of truth that every
 * layer (data, models, train, runner, store) reads. Keys are snake_case because
 * they are also what users type in `--set train.lr=3e-4` and what DuckDB columns
 * are named after (`train_lr`).
 *
 * @module
 */
import type { DenseOptions } from "../models/ffn/dense.ts";
import type { FinedeepOptions } from "../models/ffn/finedeep.ts";
import type { DsmoeOptions } from "../models/ffn/dsmoe.ts";
import type { FinermoeOptions } from "../models/ffn/finermoe.ts";
import type { TopkMoeOptions } from "../models/ffn/topk_moe.ts";

import type { ConcreteBackend } from "../backends/names.ts";
export { type BackendName, BACKENDS, type ConcreteBackend } from "../backends/names.ts";

/**
 * Which data a run trains on. A dataset is a typed module `data/<id>.ts` (source, normalisation,
 * document split, tokenizer, pinned hashes; `deno task data list`); the config names it by id and
 * may narrow it. The dataset's manifest hash (content, split and tokenizer) is part of the run hash.
 */
export interface DataConfig {
  /** Dataset id: a module `data/<id>.ts` (e.g. `gutenberg`, `gutenberg-bpe2k`), or `file` for a local corpus at `path`. */
  dataset: string;
  /** Only for dataset `file`: a .txt/.jsonl/.parquet file or a directory of them (one document per file/line/row). */
  path: string | null;
  /** Only for dataset `file` (.jsonl/.parquet): the field holding the text. */
  text_field: string;
  /** Fraction of documents held out for validation, in (0, 0.5]; null = the dataset's own (0.1 for `file`). */
  val_fraction: number | null;
  /** Seed of the document split; null = the dataset's own (0 for `file`). */
  split_seed: number | null;
  /** Keep only the first N tokens of each split (null = all). For tiny presets. */
  max_tokens: number | null;
}

/**
 * The FFN variant of every block: one of the options types that `lib/models/ffn/<kind>.ts` exports,
 * told apart by `kind` (which names the module). A wrong option name or value fails `deno check`.
 * Type-only imports: they are erased at run time and are not part of any run's code hash.
 */
export type FfnConfig = DenseOptions | FinedeepOptions | DsmoeOptions | FinermoeOptions | TopkMoeOptions;

/** FFN kinds (the `kind` of {@link FfnConfig}). */
export type FfnKind = FfnConfig["kind"];

/** A LLaMA-style decoder. */
export interface ModelConfig {
  /**
   * Vocabulary size. In experiments it defaults to 0, meaning the dataset's, filled in when the run is planned;
   * {@link DEFAULT_MODEL} has 256 (the byte tokenizer's) for code that builds models directly.
   */
  vocab_size: number;
  d_model: number;
  n_layers: number;
  n_heads: number;
  /** Hidden width of the dense SwiGLU FFN (variants derive their sizes from it). */
  d_ff: number;
  /** Context length in tokens. */
  seq_len: number;
  /** Share the token embedding with the output head. */
  tie_embeddings: boolean;
  rope_base: number;
  norm_eps: number;
  /** Std of the normal init; residual output projections use init_std / sqrt(2 * n_layers). */
  init_std: number;
  ffn: FfnConfig;
}

/** Optimizer, schedule and bookkeeping. */
export interface TrainConfig {
  /** Optimizer steps. */
  steps: number;
  /** Sequences per step. */
  batch_size: number;
  /** Peak learning rate. */
  lr: number;
  /** Final learning rate of the cosine decay, as a fraction of lr. */
  min_lr_ratio: number;
  /** Linear warmup steps. */
  warmup_steps: number;
  weight_decay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Global gradient-norm clip (0 = off). */
  grad_clip: number;
  /** Evaluate on validation every N steps (and always at the end). */
  eval_every: number;
  /** Validation batches per evaluation (fixed, deterministic set). */
  eval_batches: number;
  /** Write a resumable checkpoint every N steps (0 = only the final one). */
  checkpoint_every: number;
  /** Record the training loss every N steps. */
  log_every: number;
}

/** Everything that determines a run's result, after defaults, scale, overrides and the grid are applied. */
export interface RunConfig {
  experiment: string;
  variant: string;
  seed: number;
  backend: ConcreteBackend;
  data: DataConfig;
  model: ModelConfig;
  train: TrainConfig;
}

/** Deep partial, for experiment modules and overrides. */
export type DeepPartial<T> = T extends readonly unknown[] ? T
  : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> }
  : T;

/** Defaults every experiment starts from. */
export const DEFAULT_DATA: DataConfig = {
  dataset: "gutenberg",
  path: null,
  text_field: "text",
  val_fraction: null,
  split_seed: null,
  max_tokens: null,
};

/** Default model: the compute.md reference model (0.89M params). */
export const DEFAULT_MODEL: ModelConfig = {
  vocab_size: 256,
  d_model: 128,
  n_layers: 4,
  n_heads: 4,
  d_ff: 384,
  seq_len: 128,
  tie_embeddings: true,
  rope_base: 10000,
  norm_eps: 1e-5,
  init_std: 0.02,
  ffn: { kind: "dense" },
};

/** Default optimizer settings (nanoGPT-like for small models). */
export const DEFAULT_TRAIN: TrainConfig = {
  steps: 200,
  batch_size: 16,
  lr: 1e-3,
  min_lr_ratio: 0.1,
  warmup_steps: 20,
  weight_decay: 0.1,
  beta1: 0.9,
  beta2: 0.95,
  eps: 1e-8,
  grad_clip: 1.0,
  eval_every: 50,
  eval_batches: 8,
  checkpoint_every: 50,
  log_every: 1,
};
