/**
 * One optimizer step, and evaluation: the computation of the training loop (lib/train/mod.ts), apart
 * from its bookkeeping (metrics, checkpoints, resume).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Batch } from "../data/batches.ts";
import type { Transformer } from "../models/transformer.ts";
import type { Rng } from "../util/rng.ts";
import { type AdamW, globalNormScale } from "./optim.ts";
import { faultNaN } from "../util/fault.ts";

/** A batch as int32 tensors `[batch, seq]` (inputs, targets). */
export function batchTensors(b: Batch): [tf.Tensor2D, tf.Tensor2D] {
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

/** What {@link trainStep} needs besides the model, optimizer and batch. */
export interface StepOptions {
  /** Learning rate of this step. */
  lr: number;
  /** The trainer's RNG (FFN variants draw from it; its state is checkpointed). */
  rng: Rng;
  /** Global gradient-norm clip (0 = off). */
  gradClip: number;
  /** Read the FFN statistics of this step (a logged step). */
  logStats: boolean;
}

/** What one step measured: the batch's loss before the update, the gradient norm before clipping, FFN stats. */
export interface StepResult {
  loss: number;
  gradNorm: number;
  statValues: [string, number][];
}

/**
 * Forward, backward, clip and AdamW update on one batch, in one tidy scope. The fault points
 * `nan@train.grad` (NaN gradients) and `nan@train.loss` (the loss overflows) are injected here.
 */
export async function trainStep(model: Transformer, opt: AdamW, batch: Batch, o: StepOptions): Promise<StepResult> {
  // Tensors kept out of the forward tidy of variableGrads (the reported loss, FFN stats).
  const kept: tf.Tensor[] = [], stats: Record<string, tf.Scalar> = {}, out: { loss?: tf.Scalar } = {};
  const poison = faultNaN("train.grad"), overflow = faultNaN("train.loss");
  const packed = tf.tidy(() => {
    const [x, y] = batchTensors(batch);
    const { grads } = tf.variableGrads(() => {
      const obj = model.objective(x, y, { training: true, rng: o.rng });
      kept.push(out.loss = tf.keep(obj.loss));
      for (const [k, t] of Object.entries(obj.stats)) kept.push(stats[k] = tf.keep(t));
      const objective = obj.aux ? tf.add(obj.loss, obj.aux) as tf.Scalar : obj.loss;
      // Fault injection (FINELAB_FAULT=nan@train.grad:<n>): NaN gradients, the loss itself stays finite.
      return poison ? tf.mul(objective, NaN) as tf.Scalar : objective;
    }, model.variables());
    const named = model.specs.map((sp) => grads[model.param(sp.name).name]);
    // Clipping's scale is applied inside the AdamW update (the same bits as scaling the gradients first).
    const { norm, scale } = globalNormScale(named, o.gradClip);
    opt.apply(model.params, new Map(model.specs.map((sp, i) => [sp.name, named[i]])), o.lr, { gradScale: scale });
    // Fault injection (FINELAB_FAULT=nan@train.loss:<n>): the step's loss overflows to +Infinity.
    return tf.stack([overflow ? tf.mul(out.loss!, Infinity) : out.loss!, norm]);
  });
  const [loss, gradNorm] = await packed.data();
  const statValues: [string, number][] = [];
  if (o.logStats) { for (const [k, t] of Object.entries(stats)) statValues.push([k, (await t.data())[0]]); }
  tf.dispose([packed, ...kept]);
  return { loss, gradNorm, statValues };
}
