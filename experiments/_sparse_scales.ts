/**
 * Presets shared by the sparse-model experiments (dsmoe-*, finermoe-*): their default data, model and
 * schedule ({@link sparseDefault}: only the step count differs), the `tiny` (tests) and `gpu` scales, and
 * {@link sparseSpec}, everything of such an experiment but its id, description and children.
 * (The leading `_` keeps this helper out of the experiment list.)
 */
import type { ExperimentSpec, VariantPatch } from "../lib/experiment/mod.ts";

/** The dense parent every sparse child starts from (a child's `init_from`). */
export const PARENT = { variant: "dense_parent" };

/** The `tiny` and `gpu` presets. */
export const SPARSE_SCALES: NonNullable<ExperimentSpec["scales"]> = {
  tiny: {
    seeds: [0],
    data: { max_tokens: 100_000 },
    model: { d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32, seq_len: 16 },
    train: { steps: 3, batch_size: 2, warmup_steps: 1, eval_every: 3, eval_batches: 1, checkpoint_every: 0 },
  },
  gpu: {
    seeds: [0, 1, 2],
    model: { d_model: 384, n_layers: 6, n_heads: 6, d_ff: 1024, seq_len: 256 },
    train: {
      steps: 1500,
      batch_size: 32,
      lr: 1e-3,
      warmup_steps: 75,
      eval_every: 250,
      eval_batches: 16,
      checkpoint_every: 250,
    },
  },
};

/**
 * The default scale's data, dense model and schedule of the sparse experiments, for `steps` steps per run
 * (parent and children alike): warmup a tenth of the steps, evaluation every quarter, a checkpoint halfway.
 */
export function sparseDefault(steps: number): Pick<ExperimentSpec, "data" | "model" | "train"> {
  return {
    data: { dataset: "gutenberg" },
    model: { d_model: 64, n_layers: 2, n_heads: 4, d_ff: 256, seq_len: 64, ffn: { kind: "dense" } },
    train: {
      steps,
      batch_size: 16,
      lr: 2e-3,
      warmup_steps: steps / 10,
      eval_every: steps / 4,
      eval_batches: 8,
      checkpoint_every: steps / 2,
    },
  };
}

/** Options of {@link sparseSpec}. */
export interface SparseSpecOptions {
  /** Steps per run at the default scale (parent and children alike; see {@link sparseDefault}). */
  steps: number;
  /** Seeds at the default scale. */
  seeds: number[];
  /** The experiment's report. */
  report: ExperimentSpec["report"];
  /** The parent's own patch (default `{}`: one parent per seed). */
  parent?: VariantPatch;
}

/**
 * All of a sparse experiment's spec but its id and description: the seeds, {@link sparseDefault}'s
 * data, model and schedule, the variants (`dense_parent`, `dense` continued from it, then `children`),
 * val_loss and val_ppl as summary metrics, the report and {@link SPARSE_SCALES}.
 */
export function sparseSpec(
  opts: SparseSpecOptions,
  children: Record<string, VariantPatch>,
): Omit<ExperimentSpec, "id" | "description"> {
  return {
    seeds: opts.seeds,
    ...sparseDefault(opts.steps),
    variants: { dense_parent: opts.parent ?? {}, dense: { init_from: PARENT }, ...children },
    metrics: ["val_loss", "val_ppl"],
    report: opts.report,
    scales: SPARSE_SCALES,
  };
}
