/**
 * FineRMoE's training-time routing on the native backend (lib/models/ffn/finermoe.ts, default options:
 * one router, `joint_softmax`, a balance loss): the combination weights and the balance loss as two ops with
 * their own gradients instead of ~25 tfjs ops and their ~30 gradient kernels, BIT-IDENTICAL to
 * {@link finermoeRouting} + `balanceLoss` (tested: values and the gradients of x and the router).
 *
 * The tfjs form's logits z = x·router feed, in this order, the mask (no gradient: its gradFunc adds zeros),
 * `probs = softmax(z)` (the balance loss) and `z + (mask − 1)·1e9` (the masked softmax), so the tape sums
 * z's gradient as `(d_masked + d_probs) + 0`. Here z feeds the same mask op, then the balance-loss op, then
 * the combination-weights op, which the tape sums the same way. Each op does the float32 operations of the
 * kernels it replaces in their order: the native Softmax kernel itself (`fl_softmax`), products, sums and
 * quotients of float32 values rounded once (C float arithmetic without contraction, in kernels/moe.c
 * `fl_route_counts`, `fl_balance_fwd`, `fl_balance_bwd`, `fl_mask_logits`, `fl_softmax_grad`; they were JS
 * loops with Math.fround, ~5 ms per training step at the bench's sizes), row and whole sums accumulated in
 * double in index order as the Sum and Mean kernels, and tfjs's gradients: softmax `dy·y − sum(dy·y)·y`, Mean
 * `(dy·1)/T`, Sum `dy·1`, Multiply `dy·other`.
 *
 * `FINELAB_SPARSE_TRAIN=tfjs` turns it off with the sparse training op (lib/models/sparse_train.ts).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { matmul } from "../backends/ops.ts";
import { loadKernels } from "../backends/native/mod.ts";
import type { FinermoeShape } from "./ffn/finermoe.ts";
import { finermoeMask } from "./finermoe_routing.ts";
import { sparseTrainActive } from "./sparse_train.ts";

const f = Math.fround;

/** Whether {@link finermoeTrainRouting} applies: native, the sparse op on, default routing, a balance loss. */
export function trainRoutingActive(s: FinermoeShape): boolean {
  return sparseTrainActive() && s.routers === "single" && s.combine === "joint_softmax" && s.balance_coef > 0;
}

/**
 * Combination weights `coef` `[N_tok, N]` and the balance loss (without its coefficient) of one layer, for
 * sequences of `seqLen` tokens (N_tok when it does not divide N_tok). See the module doc.
 */
export function finermoeTrainRouting(
  x: tf.Tensor2D,
  router: tf.Tensor,
  s: FinermoeShape,
  seqLen: number,
): { coef: tf.Tensor2D; lb: tf.Scalar; mask: tf.Tensor2D } {
  const k = loadKernels().k, z = matmul(x, router), [N, E] = z.shape;
  const T = N % seqLen === 0 ? seqLen : N, G = N / T;
  const mask = finermoeMask(z, s), mv = mask.dataSync() as Float32Array;
  const zv = z.dataSync() as Float32Array;
  // counts [G, E] of the routed tokens per sequence (Sum over the sequence: integers, exact).
  const counts = new Float32Array(G * E);
  k.fl_route_counts(mv, counts, N, E, T);
  const c0 = f(E / (s.active * T * G));

  // Both ops read z's values (zv) rather than their tensor inputs, which are z (and the mask). Their float32
  // steps run in C (kernels/moe.c fl_balance_fwd / fl_balance_bwd / fl_mask_logits / fl_softmax_grad).
  const balance = tf.customGrad(() => {
    const probs = new Float32Array(N * E);
    k.fl_softmax(zv, probs, N, E);
    // Σ_{g,e} counts·P with P = Mean over the sequence (each term x/T rounded, summed in double), times c0
    const value = k.fl_balance_fwd(probs, counts, N, E, T, c0) as number;
    return {
      value: tf.scalar(value),
      gradFunc: (dy: tf.Tensor) => {
        const ds = f(dy.dataSync()[0] * c0), dz = new Float32Array(N * E);
        k.fl_balance_bwd(ds, counts, probs, dz, N, E, T); // f(f(ds·counts) / T), then the softmax's
        return tf.tensor2d(dz, [N, E]);
      },
    };
  });

  // The mask is an input (its gradient: zeros) so that the mask op's zeros reach z as in the tfjs form.
  const combine = tf.customGrad(() => {
    const zm = new Float32Array(N * E), coef = new Float32Array(N * E);
    k.fl_mask_logits(zv, mv, zm, N * E); // z + (mask − 1)·1e9
    k.fl_softmax(zm, coef, N, E);
    return {
      value: tf.tensor2d(coef, [N, E]),
      gradFunc: (dy: tf.Tensor) => {
        const dz = new Float32Array(N * E);
        k.fl_softmax_grad(dy.dataSync() as Float32Array, coef, dz, N, E);
        return [tf.tensor2d(dz, [N, E]), tf.zeros([N, E])];
      },
    };
  });

  const lb = balance(z) as tf.Scalar;
  return { coef: combine(z, mask) as tf.Tensor2D, lb, mask };
}
