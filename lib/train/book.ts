/**
 * The bookkeeping of a training attempt (lib/train/mod.ts): metrics so far, steps, losses, failure,
 * timing, and the loop's two side jobs, evaluation and checkpoints.
 *
 * @module
 */
import type { MetricRow, RunSummary } from "../core/records.ts";
import type { Batch } from "../data/batches.ts";
import type { Transformer } from "../models/transformer.ts";
import type { Rng } from "../util/rng.ts";
import type { AdamW } from "./optim.ts";
import { learningRate } from "./optim.ts";
import { type Checkpoint, saveCheckpoint } from "./checkpoint.ts";
import { evaluate } from "./step.ts";
import type { TrainOptions } from "./mod.ts";

/**
 * The bookkeeping of one training attempt: metrics so far, steps, losses, failure, timing, and the two
 * things the loop does besides stepping: evaluate and checkpoint.
 */
export class RunBook {
  readonly metrics: MetricRow[];
  readonly startStep: number;
  stepsDone: number;
  stepsThisAttempt = 0;
  trainMs = 0;
  lastLoss: number | null;
  valLoss: number | null = null;
  failure: RunSummary["failure"] = null;
  readonly #wallBefore: number;
  readonly #t0 = performance.now();

  constructor(
    readonly opts: TrainOptions,
    readonly run: { model: Transformer; opt: AdamW; rng: Rng; evalSet: Batch[]; tokensPerStep: number },
    ck: Checkpoint | null,
  ) {
    this.metrics = ck ? [...ck.state.metrics] : [];
    this.startStep = this.stepsDone = ck?.state.step ?? 0;
    this.#wallBefore = ck?.state.wall_s ?? 0;
    this.lastLoss = ck?.state.last_train_loss ?? null;
    for (const r of this.metrics) if (r.split === "val" && r.name === "loss") this.valLoss = r.value;
  }

  /** Logs metric rows: kept for the summary and passed to the run's live metrics sink. */
  async log(...rows: MetricRow[]): Promise<void> {
    this.metrics.push(...rows);
    await this.opts.metricsSink?.append(rows);
  }

  /** Seconds of all attempts so far. */
  wallNow(): number {
    return this.#wallBefore + (performance.now() - this.#t0) / 1000;
  }

  /** This attempt's training throughput (tokens/s, training steps only). */
  rate(): number {
    return this.trainMs > 0 ? (this.stepsThisAttempt * this.run.tokensPerStep) / (this.trainMs / 1000) : 0;
  }

  /** Writes a checkpoint; refuses (returns false and sets failure) when a weight is not finite. */
  async checkpoint(name: string, final: boolean): Promise<boolean> {
    const { model, opt, rng, tokensPerStep } = this.run;
    const weights = await model.getWeights();
    for (const [pname, w] of weights) {
      if (!w.data.every(Number.isFinite)) {
        this.failure = {
          step: this.stepsDone,
          reason: `non-finite values in ${pname} after ${this.stepsDone} steps`,
          last_good_loss: this.lastLoss,
        };
        return false;
      }
    }
    await saveCheckpoint(this.opts.dir, name, {
      specs: model.specs,
      weights,
      optimizer: await opt.getState(),
      state: {
        step: this.stepsDone,
        optimizer_step: opt.step,
        rng_state: rng.state,
        data_position: this.stepsDone,
        tokens_seen: this.stepsDone * tokensPerStep,
        wall_s: this.wallNow(),
        last_train_loss: this.lastLoss,
        metrics: this.metrics,
        config: this.opts.config,
        final,
      },
    });
    return true;
  }

  /** Evaluates after k steps and logs `val` loss and ppl; false (failure set) on a non-finite loss. */
  async runEval(k: number): Promise<boolean> {
    const tc = this.opts.config.train;
    const v = await evaluate(this.run.model, this.run.evalSet);
    if (!Number.isFinite(v)) {
      this.failure = {
        step: k,
        reason: `non-finite validation loss (${v}) after ${k} steps`,
        last_good_loss: this.lastLoss,
      };
      return false;
    }
    this.valLoss = v;
    await this.log({ step: k, split: "val", name: "loss", value: v }, {
      step: k,
      split: "val",
      name: "ppl",
      value: Math.exp(v),
    });
    this.opts.progress?.({
      step: k,
      steps: tc.steps,
      loss: null,
      lr: learningRate(Math.max(0, k - 1), tc),
      tokens_per_sec: this.rate(),
      eta_s: 0,
      phase: "eval",
      val_loss: v,
    });
    return true;
  }
}
