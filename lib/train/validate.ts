/**
 * Checks of the train section of a run config.
 *
 * @module
 */
import type { ModelConfig, TrainConfig } from "../core/config.ts";
import type { Dataset } from "../data/types.ts";
import { loadFfn, validateModel } from "../models/variants.ts";
import type { FfnVariant } from "../models/ffn/types.ts";

/** An integer >= min. */
export const isInt = (v: unknown, min: number): boolean => typeof v === "number" && Number.isInteger(v) && v >= min;
const isNum = (v: unknown) => typeof v === "number" && Number.isFinite(v);

/** Checks the train section; one message per problem naming field, value and allowed range. */
export function validateTrain(cfg: TrainConfig): string[] {
  const e: string[] = [];
  const v = (k: keyof TrainConfig) => JSON.stringify(cfg[k]);
  for (const k of ["steps", "batch_size", "eval_every", "eval_batches", "log_every"] as const) {
    if (!isInt(cfg[k], 1)) e.push(`train.${k} = ${v(k)} must be an integer >= 1`);
  }
  for (const k of ["warmup_steps", "checkpoint_every"] as const) {
    if (!isInt(cfg[k], 0)) e.push(`train.${k} = ${v(k)} must be an integer >= 0`);
  }
  if (!isNum(cfg.lr) || cfg.lr <= 0) e.push(`train.lr = ${v("lr")} must be a number > 0`);
  if (!isNum(cfg.min_lr_ratio) || cfg.min_lr_ratio < 0 || cfg.min_lr_ratio > 1) {
    e.push(`train.min_lr_ratio = ${v("min_lr_ratio")} must be in [0, 1]`);
  }
  for (const k of ["beta1", "beta2"] as const) {
    if (!isNum(cfg[k]) || cfg[k] < 0 || cfg[k] >= 1) e.push(`train.${k} = ${v(k)} must be in [0, 1)`);
  }
  if (!isNum(cfg.eps) || cfg.eps <= 0) e.push(`train.eps = ${v("eps")} must be a number > 0`);
  if (!isNum(cfg.weight_decay) || cfg.weight_decay < 0) {
    e.push(`train.weight_decay = ${v("weight_decay")} must be >= 0`);
  }
  if (!isNum(cfg.grad_clip) || cfg.grad_clip < 0) e.push(`train.grad_clip = ${v("grad_clip")} must be >= 0 (0 = off)`);
  return e;
}

/**
 * Checks a run's config (model, train, FFN options), its dataset against the vocabulary and the
 * options of `train`; throws one error listing the problems. Returns the run's FFN variant.
 */
export async function checkInputs(
  opts: { config: { model: ModelConfig; train: TrainConfig }; dataset: Dataset; stopAfter?: number },
): Promise<FfnVariant> {
  const { config, dataset } = opts;
  const tc = config.train, mc = config.model;
  const errors = [...validateModel(mc), ...validateTrain(tc)];
  if (errors.length) throw new Error(`invalid run config:\n  ${errors.join("\n  ")}`);
  const ffn = await loadFfn(mc.ffn.kind);
  const ffnErrors = ffn.validate(mc);
  if (ffnErrors.length) throw new Error(`invalid run config:\n  ${ffnErrors.join("\n  ")}`);
  if (dataset.vocabSize !== mc.vocab_size) {
    throw new Error(
      `model.vocab_size = ${mc.vocab_size} does not match the dataset's vocabulary size ${dataset.vocabSize}`,
    );
  }
  for (const [split, toks] of [["train", dataset.train], ["val", dataset.val]] as const) {
    const m = toks.maxId;
    if (m >= mc.vocab_size) {
      throw new Error(`dataset ${split} split has token id ${m} >= model.vocab_size = ${mc.vocab_size}`);
    }
  }
  if (opts.stopAfter !== undefined && !isInt(opts.stopAfter, 1)) {
    throw new Error(`stopAfter = ${opts.stopAfter} must be an integer >= 1`);
  }
  return ffn;
}
