/**
 * The training loop: builds the model on the run's backend, trains with AdamW on deterministic
 * batches, logs metrics, evaluates, checkpoints and resumes exactly.
 *
 * Determinism: step s uses batch trainBatch(train, seed, s) and the learning rate of step s; the
 * checkpoint holds weights and AdamW moments as raw float32, the optimizer step and the trainer
 * RNG state. So a run stopped after k steps and resumed reproduces the uninterrupted run's metrics
 * bit for bit on the same backend.
 *
 * Metric rows (MetricRow, lib/core/records.ts). `step` is the number of updates applied to the
 * weights that were measured:
 * - split "train", every `log_every` steps and at the last step: `loss` (mean cross-entropy of the
 *   batch of step s, before its update), `lr` and `grad_norm` (global norm before clipping) of
 *   that step, and any FFN statistics `ffn.<name>` — all at step = s;
 * - split "val", every `eval_every` steps and at the end: `loss` (mean over the fixed
 *   evalBatches) and `ppl` = exp(loss), at step = k updates.
 *
 * Summary timing: `wall_s` adds up all attempts (it is saved in checkpoints); `tokens_per_sec` is this
 * attempt's training steps only (no evaluation or checkpoint writes); `prefill_tokens_per_sec` and
 * `decode_tokens_per_sec` are the final model's inference speed at batch 1 (measureInferenceSpeed).
 * `extra` holds deterministic metrics only (variants' statistics), never timings, so `--verify` can
 * compare it bit for bit: for a completed run, the activation analysis of ./analysis.ts on the
 * validation batches (NSAR, histograms, router stats).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { ModelConfig, RunConfig, TrainConfig } from "../core/config.ts";
import type { Dataset } from "../data/types.ts";
import type { MetricRow, RunSummary } from "../core/records.ts";
import { type Batch, evalBatches, trainBatch } from "../data/batches.ts";
import { mixSeed, Rng } from "../util/rng.ts";
import { initBackend } from "../backends/init.ts";
import {
  createModel,
  flopsPerToken,
  loadFfn,
  paramCount,
  paramSpecs,
  type Transformer,
  validateModel,
} from "../models/transformer.ts";
import { AdamW, clipByGlobalNorm, learningRate } from "./optim.ts";
import { analyzeModel } from "./analysis.ts";
import { measureInferenceSpeed, sparseMetrics } from "../models/sparse_metrics.ts";
import {
  type Checkpoint,
  checkpointName,
  findLatestCheckpoint,
  loadFinalWeights,
  pruneCheckpoints,
  removeTempCheckpoints,
  saveCheckpoint,
} from "./checkpoint.ts";
import { faultNaN, faultPoint } from "../util/fault.ts";

export { loadFinalWeights } from "./checkpoint.ts";
export { learningRate } from "./optim.ts";

/** Progress report, sent after every training step and after every evaluation. */
export interface TrainProgress {
  /** Steps completed. */
  step: number;
  /** Total steps of the run. */
  steps: number;
  /** Training loss of the step just done (null in the eval phase). */
  loss: number | null;
  /** Learning rate of the step just done. */
  lr: number;
  /** This attempt's training throughput so far. */
  tokens_per_sec: number;
  /** Estimated seconds left (training steps only). */
  eta_s: number;
  /** After a training step or after an evaluation. */
  phase: "train" | "eval";
  /** Validation loss (eval phase only). */
  val_loss?: number;
}

/** Inputs of {@link train}. */
export interface TrainOptions {
  /** The run config; `config.backend` must be concrete. */
  config: RunConfig;
  /** Tokenised train/val splits (lib/data). */
  dataset: Dataset;
  /** The run's cache directory (checkpoints go to `<dir>/checkpoints/`). */
  dir: string;
  /** Continue from the newest valid checkpoint (default true). */
  resume?: boolean;
  /** Called after every step and evaluation. */
  progress?: (p: TrainProgress) => void;
  /** Start from a parent run's final weights instead of the seeded init (ignored when resuming). */
  init?: TrainInit;
  /** Test hook: return after this many steps of this attempt, as if killed (no final checkpoint). */
  stopAfter?: number;
  /** Where warnings go (ignored checkpoints, ...). Default: console.warn. */
  warn?: (message: string) => void;
}

/** A parent run to start from (upcycling / continued training); see lib/models/upcycle.ts. */
export interface TrainInit {
  /** The parent run's cache directory (its `checkpoints/final/` is read). */
  dir: string;
  /** The parent's model config. */
  model: ModelConfig;
  /**
   * Training steps behind the parent's weights (its steps plus its own ancestors'). The child continues its
   * seed's batch stream from there: step s trains on `trainBatch(train, seed, steps_before + s)`, so continued
   * training and upcycling see new windows instead of replaying the parent's batches. Default 0.
   */
  steps_before?: number;
}

type Weights = Map<string, { shape: number[]; data: Float32Array }>;
type UpcycleFn = (
  child: ModelConfig,
  parent: { config: ModelConfig; weights: Weights },
  o: { seed: number },
) => Promise<Weights>;

/**
 * The child's initial weights from its parent's final checkpoint. upcycle.ts is imported through a
 * computed specifier so that it is not in the trainer's import graph: the runner adds it to the code
 * hash of the runs that have a parent only.
 */
async function initWeights(init: TrainInit, config: RunConfig) {
  const spec = ["..", "models", "upcycle.ts"].join("/");
  const { upcycle } = await import(spec) as { upcycle: UpcycleFn };
  return upcycle(config.model, { config: init.model, weights: await loadFinalWeights(init.dir) }, {
    seed: config.seed,
  });
}

/** Result of {@link train}. */
export interface TrainOutcome {
  /** Final numbers (summary.json). */
  summary: RunSummary;
  /** All metric rows of the run (including those restored from a checkpoint). */
  metrics: MetricRow[];
  /** True when `stopAfter` ended the attempt early (summary.status is then "failed" with that reason). */
  stopped: boolean;
}

/** Salt of the trainer RNG stream (ctx.rng of FFN variants). */
const TRAIN_RNG_SALT = 0x7a1;
/** Periodic checkpoints kept. */
const KEEP_CHECKPOINTS = 2;

const isInt = (v: unknown, min: number) => typeof v === "number" && Number.isInteger(v) && v >= min;
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

function batchTensors(b: Batch): [tf.Tensor2D, tf.Tensor2D] {
  return [
    tf.tensor2d(b.x, [b.batchSize, b.seqLen], "int32"),
    tf.tensor2d(b.y, [b.batchSize, b.seqLen], "int32"),
  ];
}

/** Mean loss of the model over the given batches (each batch's mean, averaged; same-size batches). */
export async function evaluate(model: Transformer, batches: readonly Batch[]): Promise<number> {
  if (!batches.length) throw new Error("evaluate: no batches");
  let sum = 0;
  for (const b of batches) {
    const l = tf.tidy(() => {
      const [x, y] = batchTensors(b);
      return model.loss(x, y);
    });
    sum += (await l.data())[0];
    l.dispose();
  }
  return sum / batches.length;
}

function maxToken(tokens: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < tokens.length; i++) if (tokens[i] > m) m = tokens[i];
  return m;
}

let active: string | null = null;

/**
 * Trains (or resumes) one run. See the module doc for the metrics and determinism. One run at a
 * time per process (tfjs has one global engine and backend); a concurrent call throws.
 */
export async function train(opts: TrainOptions): Promise<TrainOutcome> {
  if (active) throw new Error(`train() is already running for ${active} in this process; run one at a time`);
  active = opts.dir;
  try {
    return await trainOnce(opts);
  } finally {
    active = null;
  }
}

async function trainOnce(opts: TrainOptions): Promise<TrainOutcome> {
  const { config, dataset, dir } = opts;
  const warn = opts.warn ?? ((m: string) => console.warn(`warning: ${m}`));
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
    const m = maxToken(toks);
    if (m >= mc.vocab_size) {
      throw new Error(`dataset ${split} split has token id ${m} >= model.vocab_size = ${mc.vocab_size}`);
    }
  }
  if (opts.stopAfter !== undefined && !isInt(opts.stopAfter, 1)) {
    throw new Error(`stopAfter = ${opts.stopAfter} must be an integer >= 1`);
  }

  await initBackend(config.backend);
  await removeTempCheckpoints(dir);
  const B = tc.batch_size, T = mc.seq_len, tokensPerStep = B * T;
  const evalSet = evalBatches(dataset.val, tc.eval_batches, { batchSize: B, seqLen: T });
  trainBatch(dataset.train, config.seed, 0, { batchSize: B, seqLen: T }); // fail early on a too-small split

  // Specs do not depend on weights: build them once to verify checkpoints against.
  let ck: Checkpoint | null = null;
  if (opts.resume ?? true) ck = await findLatestCheckpoint(dir, { config, specs: paramSpecs(mc, ffn), warn });

  const model = await createModel(
    mc,
    config.seed,
    ck
      ? { from: { weights: ck.weights } }
      : opts.init
      ? { from: { weights: await initWeights(opts.init, config) } }
      : {},
  );
  const opt = new AdamW(model.specs, tc, ck?.optimizer);
  try {
    const rng = new Rng(ck ? ck.state.rng_state : mixSeed(config.seed, TRAIN_RNG_SALT));
    const metrics: MetricRow[] = ck ? [...ck.state.metrics] : [];
    const startStep = ck?.state.step ?? 0;
    const wallBefore = ck?.state.wall_s ?? 0;
    let lastLoss: number | null = ck?.state.last_train_loss ?? null;
    let valLoss: number | null = null;
    for (const r of metrics) if (r.split === "val" && r.name === "loss") valLoss = r.value;

    const t0 = performance.now();
    let trainMs = 0, stepsDone = startStep, stepsThisAttempt = 0, stopped = false;
    let failure: RunSummary["failure"] = null;
    const wallNow = () => wallBefore + (performance.now() - t0) / 1000;
    const rate = () => (trainMs > 0 ? (stepsThisAttempt * tokensPerStep) / (trainMs / 1000) : 0);

    /** Writes a checkpoint; refuses (returns false and sets failure) when a weight is not finite. */
    const checkpoint = async (name: string, final: boolean): Promise<boolean> => {
      const weights = await model.getWeights();
      for (const [pname, w] of weights) {
        if (!w.data.every(Number.isFinite)) {
          failure = {
            step: stepsDone,
            reason: `non-finite values in ${pname} after ${stepsDone} steps`,
            last_good_loss: lastLoss,
          };
          return false;
        }
      }
      await saveCheckpoint(dir, name, {
        specs: model.specs,
        weights,
        optimizer: await opt.getState(),
        state: {
          step: stepsDone,
          optimizer_step: opt.step,
          rng_state: rng.state,
          data_position: stepsDone,
          tokens_seen: stepsDone * tokensPerStep,
          wall_s: wallNow(),
          last_train_loss: lastLoss,
          metrics,
          config,
          final,
        },
      });
      return true;
    };

    const runEval = async (k: number): Promise<boolean> => {
      const v = await evaluate(model, evalSet);
      if (!Number.isFinite(v)) {
        failure = { step: k, reason: `non-finite validation loss (${v}) after ${k} steps`, last_good_loss: lastLoss };
        return false;
      }
      valLoss = v;
      metrics.push({ step: k, split: "val", name: "loss", value: v }, {
        step: k,
        split: "val",
        name: "ppl",
        value: Math.exp(v),
      });
      opts.progress?.({
        step: k,
        steps: tc.steps,
        loss: null,
        lr: learningRate(Math.max(0, k - 1), tc),
        tokens_per_sec: rate(),
        eta_s: 0,
        phase: "eval",
        val_loss: v,
      });
      return true;
    };

    const dataStep0 = opts.init?.steps_before ?? 0;
    if (!isInt(dataStep0, 0)) throw new Error(`init.steps_before = ${dataStep0} must be an integer >= 0`);
    const resumedFinal = ck?.state.final === true && startStep === tc.steps;
    for (let s = startStep; s < tc.steps; s++) {
      if (opts.stopAfter !== undefined && stepsThisAttempt >= opts.stopAfter) {
        stopped = true;
        break;
      }
      const ts = performance.now();
      const lr = learningRate(s, tc);
      const batch = trainBatch(dataset.train, config.seed, dataStep0 + s, { batchSize: B, seqLen: T });
      // Tensors kept out of the forward tidy of variableGrads (the reported loss, FFN stats).
      const kept: tf.Tensor[] = [], stats: Record<string, tf.Scalar> = {}, out: { loss?: tf.Scalar } = {};
      const poison = faultNaN("train.grad"), overflow = faultNaN("train.loss");
      const packed = tf.tidy(() => {
        const [x, y] = batchTensors(batch);
        const { grads } = tf.variableGrads(() => {
          const o = model.objective(x, y, { training: true, rng });
          kept.push(out.loss = tf.keep(o.loss));
          for (const [k, t] of Object.entries(o.stats)) kept.push(stats[k] = tf.keep(t));
          const objective = o.aux ? tf.add(o.loss, o.aux) as tf.Scalar : o.loss;
          // Fault injection (FINELAB_FAULT=nan@train.grad:<n>): NaN gradients, the loss itself stays finite.
          return poison ? tf.mul(objective, NaN) as tf.Scalar : objective;
        }, model.variables());
        const named = model.specs.map((sp) => grads[model.param(sp.name).name]);
        const { grads: clipped, norm } = clipByGlobalNorm(named, tc.grad_clip);
        opt.apply(model.params, new Map(model.specs.map((sp, i) => [sp.name, clipped[i]])), lr);
        // Fault injection (FINELAB_FAULT=nan@train.loss:<n>): the step's loss overflows to +Infinity.
        return tf.stack([overflow ? tf.mul(out.loss!, Infinity) : out.loss!, norm]);
      });
      const [loss, gradNorm] = await packed.data();
      const logNow = s % tc.log_every === 0 || s === tc.steps - 1;
      const statValues: [string, number][] = [];
      if (logNow) { for (const [k, t] of Object.entries(stats)) statValues.push([k, (await t.data())[0]]); }
      tf.dispose([packed, ...kept]);
      trainMs += performance.now() - ts;
      stepsThisAttempt++;
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        const what = !Number.isFinite(loss) ? `loss ${loss}` : `gradient norm ${gradNorm}`;
        failure = { step: s, reason: `non-finite ${what} at step ${s}`, last_good_loss: lastLoss };
        break;
      }
      lastLoss = loss;
      if (logNow) {
        metrics.push(
          { step: s, split: "train", name: "loss", value: loss },
          { step: s, split: "train", name: "lr", value: lr },
          { step: s, split: "train", name: "grad_norm", value: gradNorm },
        );
        for (const [k, v] of statValues) metrics.push({ step: s, split: "train", name: k, value: v });
      }
      stepsDone = s + 1;
      const msPerStep = trainMs / stepsThisAttempt;
      opts.progress?.({
        step: stepsDone,
        steps: tc.steps,
        loss,
        lr,
        tokens_per_sec: rate(),
        eta_s: ((tc.steps - stepsDone) * msPerStep) / 1000,
        phase: "train",
      });
      faultPoint("train.step");
      if (stepsDone % tc.eval_every === 0 || stepsDone === tc.steps) {
        if (!(await runEval(stepsDone))) break;
        faultPoint("train.eval");
      }
      if (stepsDone < tc.steps && tc.checkpoint_every > 0 && stepsDone % tc.checkpoint_every === 0) {
        if (!(await checkpoint(checkpointName(stepsDone), false))) break;
        await pruneCheckpoints(dir, KEEP_CHECKPOINTS);
      }
    }

    const finished = !stopped && !failure && stepsDone === tc.steps;
    if (finished && !resumedFinal) {
      // A run resumed from its final checkpoint already has everything; otherwise make sure the
      // final evaluation exists (it does unless the loop was skipped) and write final/.
      if (!metrics.some((r) => r.split === "val" && r.step === tc.steps)) await runEval(tc.steps);
      if (!failure && (await checkpoint("final", true))) await pruneCheckpoints(dir, 0);
    } else if (finished) await pruneCheckpoints(dir, 0); // killed after final/ was written, before the prune

    // End-of-run activation analysis on the validation batches (NSAR, histograms, router stats; analysis.ts).
    // ... plus parameters/FLOPs actually used per token and expert load of routed variants (sparse_metrics.ts).
    const extra = !stopped && !failure && stepsDone === tc.steps
      ? { ...await analyzeModel(model, evalSet), ...await sparseMetrics(model, evalSet) }
      : {};
    // Inference speed at batch 1 (a timing: summary fields, never `extra`). A failed measurement loses nothing else.
    let speed: { prefill: number | null; decode: number | null } = { prefill: null, decode: null };
    if (!stopped && !failure && stepsDone === tc.steps) {
      try {
        const m = await measureInferenceSpeed(model, { tokens: dataset.val });
        speed = { prefill: m.prefill_tokens_per_sec, decode: m.decode_tokens_per_sec };
      } catch (e) {
        warn(`inference speed not measured: ${e instanceof Error ? e.message : e}`);
      }
    }
    if (stopped) {
      failure = {
        step: stepsDone,
        reason: `stopped after ${stepsThisAttempt} steps of this attempt (stopAfter test hook)`,
        last_good_loss: lastLoss,
      };
    }
    const summary: RunSummary = {
      status: failure ? "failed" : "completed",
      steps_done: stepsDone,
      tokens_seen: stepsDone * tokensPerStep,
      final_train_loss: lastLoss,
      val_loss: valLoss,
      val_ppl: valLoss === null ? null : Math.exp(valLoss),
      params: paramCount(mc, ffn),
      flops_per_token: flopsPerToken(mc, ffn),
      tokens_per_sec: rate(),
      prefill_tokens_per_sec: speed.prefill,
      decode_tokens_per_sec: speed.decode,
      wall_s: wallNow(),
      steps_this_attempt: stepsThisAttempt,
      resumed_from_step: ck ? startStep : null,
      failure,
      extra,
    };
    return { summary, metrics, stopped };
  } finally {
    opt.dispose();
    model.dispose();
  }
}
