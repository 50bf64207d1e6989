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
 * validation batches (NSAR, histograms, router stats), and the variant's re-evaluations (./reeval.ts).
 *
 * @module
 */
import type { ModelConfig, RunConfig } from "../core/config.ts";
import type { Dataset } from "../data/types.ts";
import type { MetricRow, RunSummary } from "../core/records.ts";
import { evalBatches, trainBatch } from "../data/batches.ts";
import { mixSeed, Rng } from "../util/rng.ts";
import { initBackend } from "../backends/init.ts";
import { createModel, type Transformer } from "../models/transformer.ts";
import { flopsPerToken, paramCount, paramSpecs } from "../models/variants.ts";
import type { FfnVariant } from "../models/ffn/types.ts";
import type { Batch } from "../data/batches.ts";
import { AdamW, learningRate } from "./optim.ts";
import { trainStep } from "./step.ts";
import { RunBook } from "./book.ts";
import { checkInputs, isInt } from "./validate.ts";
import { analyzeModel } from "./analysis.ts";
import { reevaluate } from "./reeval.ts";
import { measureInferenceSpeed, sparseMetrics } from "../models/sparse_metrics.ts";
import {
  type Checkpoint,
  checkpointName,
  findLatestCheckpoint,
  loadFinalWeights,
  pruneCheckpoints,
  removeTempCheckpoints,
} from "./checkpoint.ts";
import { faultPoint } from "../util/fault.ts";

export { loadFinalWeights } from "./checkpoint.ts";
export { evaluate } from "./step.ts";
export { validateTrain } from "./validate.ts";
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
  /**
   * Asked before every step: true (e.g. after the scheduler's pre-kill signal) writes a checkpoint of the
   * steps done so far and throws a {@link Preempted}; resuming from it ends bit-identical to an uninterrupted run.
   */
  preempt?: () => boolean;
  /** Where warnings go (ignored checkpoints, ...). Default: console.warn. */
  warn?: (message: string) => void;
  /** Receives metric rows as they are logged (the runner appends them to metrics.jsonl for live views). */
  metricsSink?: MetricsSink;
}

/**
 * Live metric rows. `start` gets the rows restored from the checkpoint this attempt resumes from (all
 * earlier rows: anything logged after that checkpoint is logged again), `append` each new row batch
 * in order; at the end the rows seen equal {@link TrainOutcome.metrics}.
 */
export interface MetricsSink {
  start(rows: readonly MetricRow[]): Promise<void>;
  append(rows: readonly MetricRow[]): Promise<void>;
}

/** Thrown by {@link train} when `preempt` asked it to stop: a checkpoint of `step` steps is on disk. */
export class Preempted extends Error {
  /** Builds the error. */
  constructor(readonly step: number) {
    super(`preempted: checkpoint written after ${step} steps; the next attempt resumes from it`);
    this.name = "Preempted";
  }
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

/** The model and optimizer of an attempt: from the newest valid checkpoint, a parent run, or the seeded init. */
async function setUp(opts: TrainOptions, ffn: FfnVariant) {
  const { config, dir } = opts;
  const warn = opts.warn ?? ((m: string) => console.warn(`warning: ${m}`));
  const mc = config.model;
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
  const opt = new AdamW(model.specs, config.train, ck?.optimizer);
  return { ck, model, opt };
}

/**
 * What a completed run measures after training: the activation analysis on the validation batches
 * (NSAR, histograms, router stats; analysis.ts) plus parameters/FLOPs actually used per token and expert
 * load of routed variants (sparse_metrics.ts), deterministic, for `extra`; and the inference speed at
 * batch 1 (a timing: summary fields, never `extra`; a failed measurement loses nothing else).
 */
async function measureFinal(model: Transformer, evalSet: Batch[], opts: TrainOptions) {
  const warn = opts.warn ?? ((m: string) => console.warn(`warning: ${m}`));
  const extra = {
    ...await analyzeModel(model, evalSet),
    ...await sparseMetrics(model, evalSet),
    ...await reevaluate(model, evalSet),
  };
  let speed: { prefill: number | null; decode: number | null } = { prefill: null, decode: null };
  try {
    const m = await measureInferenceSpeed(model, {
      tokens: opts.dataset.val.window(0, Math.min(opts.config.model.seq_len, opts.dataset.val.length)),
    });
    speed = { prefill: m.prefill_tokens_per_sec, decode: m.decode_tokens_per_sec };
  } catch (e) {
    warn(`inference speed not measured: ${e instanceof Error ? e.message : e}`);
  }
  return { extra, speed };
}

async function trainOnce(opts: TrainOptions): Promise<TrainOutcome> {
  const { config, dataset, dir } = opts;
  const tc = config.train, mc = config.model;
  const ffn = await checkInputs(opts);

  await initBackend(config.backend);
  await removeTempCheckpoints(dir);
  const B = tc.batch_size, T = mc.seq_len, tokensPerStep = B * T;
  const evalSet = evalBatches(dataset.val, tc.eval_batches, { batchSize: B, seqLen: T });
  trainBatch(dataset.train, config.seed, 0, { batchSize: B, seqLen: T }); // fail early on a too-small split

  const { ck, model, opt } = await setUp(opts, ffn);
  try {
    const rng = new Rng(ck ? ck.state.rng_state : mixSeed(config.seed, TRAIN_RNG_SALT));
    const book = new RunBook(opts, { model, opt, rng, evalSet, tokensPerStep }, ck);
    const { metrics, startStep } = book;
    await opts.metricsSink?.start(metrics);
    let stopped = false;

    const dataStep0 = opts.init?.steps_before ?? 0;
    if (!isInt(dataStep0, 0)) throw new Error(`init.steps_before = ${dataStep0} must be an integer >= 0`);
    const resumedFinal = ck?.state.final === true && startStep === tc.steps;
    for (let s = startStep; s < tc.steps; s++) {
      if (opts.stopAfter !== undefined && book.stepsThisAttempt >= opts.stopAfter) {
        stopped = true;
        break;
      }
      if (opts.preempt?.()) {
        // A periodic checkpoint of this step may already exist; otherwise write one now.
        const onDisk = tc.checkpoint_every > 0 && s % tc.checkpoint_every === 0 && s > startStep;
        if (s > startStep && !onDisk) {
          if (!(await book.checkpoint(checkpointName(s), false))) break;
          await pruneCheckpoints(dir, KEEP_CHECKPOINTS);
        }
        throw new Preempted(s);
      }
      const ts = performance.now();
      const lr = learningRate(s, tc);
      const batch = trainBatch(dataset.train, config.seed, dataStep0 + s, { batchSize: B, seqLen: T });
      const logNow = s % tc.log_every === 0 || s === tc.steps - 1;
      const { loss, gradNorm, statValues } = await trainStep(model, opt, batch, {
        lr,
        rng,
        gradClip: tc.grad_clip,
        logStats: logNow,
      });
      book.trainMs += performance.now() - ts;
      book.stepsThisAttempt++;
      if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
        const what = !Number.isFinite(loss) ? `loss ${loss}` : `gradient norm ${gradNorm}`;
        book.failure = { step: s, reason: `non-finite ${what} at step ${s}`, last_good_loss: book.lastLoss };
        break;
      }
      book.lastLoss = loss;
      if (logNow) {
        await book.log(
          { step: s, split: "train", name: "loss", value: loss },
          { step: s, split: "train", name: "lr", value: lr },
          { step: s, split: "train", name: "grad_norm", value: gradNorm },
          ...statValues.map(([k, v]): MetricRow => ({ step: s, split: "train", name: k, value: v })),
        );
      }
      const stepsDone = book.stepsDone = s + 1;
      const msPerStep = book.trainMs / book.stepsThisAttempt;
      opts.progress?.({
        step: stepsDone,
        steps: tc.steps,
        loss,
        lr,
        tokens_per_sec: book.rate(),
        eta_s: ((tc.steps - stepsDone) * msPerStep) / 1000,
        phase: "train",
      });
      faultPoint("train.step");
      if (stepsDone % tc.eval_every === 0 || stepsDone === tc.steps) {
        if (!(await book.runEval(stepsDone))) break;
        faultPoint("train.eval");
      }
      if (stepsDone < tc.steps && tc.checkpoint_every > 0 && stepsDone % tc.checkpoint_every === 0) {
        if (!(await book.checkpoint(checkpointName(stepsDone), false))) break;
        await pruneCheckpoints(dir, KEEP_CHECKPOINTS);
      }
    }

    const finished = !stopped && !book.failure && book.stepsDone === tc.steps;
    if (finished && !resumedFinal) {
      // A run resumed from its final checkpoint already has everything; otherwise make sure the
      // final evaluation exists (it does unless the loop was skipped) and write final/.
      if (!metrics.some((r) => r.split === "val" && r.step === tc.steps)) await book.runEval(tc.steps);
      if (!book.failure && (await book.checkpoint("final", true))) await pruneCheckpoints(dir, 0);
    } else if (finished) await pruneCheckpoints(dir, 0); // killed after final/ was written, before the prune

    const done = !stopped && !book.failure && book.stepsDone === tc.steps;
    const { extra, speed } = done
      ? await measureFinal(model, evalSet, opts)
      : { extra: {}, speed: { prefill: null, decode: null } };
    if (stopped) {
      book.failure = {
        step: book.stepsDone,
        reason: `stopped after ${book.stepsThisAttempt} steps of this attempt (stopAfter test hook)`,
        last_good_loss: book.lastLoss,
      };
    }
    const summary: RunSummary = {
      status: book.failure ? "failed" : "completed",
      steps_done: book.stepsDone,
      tokens_seen: book.stepsDone * tokensPerStep,
      final_train_loss: book.lastLoss,
      val_loss: book.valLoss,
      val_ppl: book.valLoss === null ? null : Math.exp(book.valLoss),
      params: paramCount(mc, ffn),
      flops_per_token: flopsPerToken(mc, ffn),
      tokens_per_sec: book.rate(),
      prefill_tokens_per_sec: speed.prefill,
      decode_tokens_per_sec: speed.decode,
      wall_s: book.wallNow(),
      steps_this_attempt: book.stepsThisAttempt,
      resumed_from_step: ck ? startStep : null,
      failure: book.failure,
      extra,
    };
    return { summary, metrics, stopped };
  } finally {
    opt.dispose();
    model.dispose();
  }
}
