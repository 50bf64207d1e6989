/**
 * FineRMoE's routing (lib/models/ffn/finermoe.ts): the two-level mask of Algorithm 1 and the combination
 * weights, with one router for both levels (the paper) or one per level (`routers = separate`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { matmul } from "../backends/ops.ts";
import { maskedSoftmax, noGrad } from "./moe.ts";
import type { FinermoeShape } from "./ffn/finermoe.ts";

/**
 * The routing mask `[N_tok, N]` of Algorithm 1 (no gradient): T_I experts in one group per output slice.
 * The group of each slice is the argmax of `groupScore` `[N_tok, G_O·R_O]` (default: the sum of the group's
 * raw logits, the single-router form).
 */
export function finermoeMask(logits: tf.Tensor2D, s: FinermoeShape, groupScore?: tf.Tensor2D): tf.Tensor2D {
  const T = logits.shape[0], groups = s.g_o * s.r_o;
  return noGrad(groupScore ? [logits, groupScore] : [logits], (z, gs) => {
    if (tf.getBackend() === "native") { // the same mask from the values in one pass (see maskValues)
      const m = maskValues(z.dataSync() as Float32Array, gs?.dataSync() as Float32Array | undefined, s);
      if (m) return tf.tensor2d(m, [T, s.experts]);
    }
    const zg = tf.reshape(z, [T, groups, s.group]);
    const sumMask = s.t_i === s.group
      ? tf.onesLike(zg)
      : tf.sum(tf.oneHot(tf.topk(zg, s.t_i).indices, s.group, 1, 0, "float32"), 2); // [T, groups, group]
    const score = tf.reshape(gs ?? tf.sum(zg, -1), [T, s.g_o, s.r_o]); // group score = Σ raw logits (single)
    const cc = s.r_o === 1 // argmax over R_O candidate groups (tfjs oneHot needs depth ≥ 2)
      ? tf.ones([T, groups, 1])
      : tf.reshape(tf.oneHot(tf.argMax(score, -1), s.r_o, 1, 0, "float32"), [T, groups, 1]);
    return tf.reshape(tf.mul(sumMask, cc), [T, s.experts]);
  }) as tf.Tensor2D;
}

/**
 * {@link finermoeMask}'s values computed directly (one pass over the logits instead of ~10 small kernels): the
 * same 0/1 mask bit for bit, as the kernels decide it: top-T_I by (value descending, index ascending) as TopK,
 * group scores as the Sum kernel (double sum in order, rounded to float32), the first largest as ArgMax.
 * Null (use the kernels) when a value is not finite.
 */
export function maskValues(z: Float32Array, gs: Float32Array | undefined, s: FinermoeShape): Float32Array | null {
  const G = s.group, groups = s.g_o * s.r_o, N = s.experts, T = z.length / N, out = new Float32Array(z.length);
  for (let i = 0; i < z.length; i++) if (!Number.isFinite(z[i])) return null;
  if (gs) { for (let i = 0; i < gs.length; i++) if (!Number.isFinite(gs[i])) return null; }
  const score = new Float32Array(groups), top = new Int32Array(s.t_i);
  for (let t = 0; t < T; t++) {
    const zt = t * N;
    for (let q = 0; q < groups; q++) {
      if (gs) score[q] = gs[t * groups + q];
      else {
        let acc = 0;
        for (let j = 0; j < G; j++) acc += z[zt + q * G + j];
        score[q] = acc; // rounded to float32 as the Sum kernel's output
      }
    }
    for (let i = 0; i < s.g_o; i++) {
      let best = 0; // ArgMax over the slice's R_O groups: the first largest
      for (let r = 1; r < s.r_o; r++) if (score[i * s.r_o + r] > score[i * s.r_o + best]) best = r;
      const base = zt + (i * s.r_o + best) * G;
      if (s.t_i === G) {
        out.fill(1, base, base + G);
        continue;
      }
      let n = 0; // top-T_I inside the group: insertion by (value descending, index ascending)
      for (let j = 0; j < G; j++) {
        const v = z[base + j];
        if (n === s.t_i && !(v > z[base + top[n - 1]])) continue;
        let p = n < s.t_i ? n++ : s.t_i - 1;
        while (p > 0 && v > z[base + top[p - 1]]) {
          top[p] = top[p - 1];
          p--;
        }
        top[p] = j;
      }
      for (let j = 0; j < s.t_i; j++) out[base + top[j]] = 1;
    }
  }
  return out;
}

/**
 * Routing of one layer: combination weights `coef` `[N_tok, N]` (0 = unselected), full softmax of the main
 * router, mask. With `routers = separate`, `concatRouter` `[d_model, G_O·R_O]` picks each slice's group and
 * scales the slice's weights by that group's softmax probability over R_O (see FinermoeOptions.routers).
 */
export function finermoeRouting(
  x: tf.Tensor2D,
  router: tf.Tensor,
  s: FinermoeShape,
  concatRouter?: tf.Tensor,
): { coef: tf.Tensor2D; probs: tf.Tensor2D; mask: tf.Tensor2D } {
  const z = matmul(x, router), T = x.shape[0], per = s.experts / s.g_o; // experts per output slice
  const separate = s.routers === "separate";
  if (separate && !concatRouter) throw new Error("finermoe routers = separate needs the concat_router parameter");
  const zc = separate ? matmul(x, concatRouter!) : undefined; // [T, G_O·R_O]
  const mask = finermoeMask(z, s, zc);
  const probs = tf.softmax(z);
  let coef: tf.Tensor2D;
  if (s.combine === "joint_softmax") coef = maskedSoftmax(z, mask);
  else if (s.combine === "raw") coef = tf.mul(z, mask);
  else {
    coef = tf.reshape(maskedSoftmax(tf.reshape(z, [T, s.g_o, per]), tf.reshape(mask, [T, s.g_o, per])), [T, s.experts]);
  }
  if (zc) {
    // Probability (softmax over the slice's R_O groups) of each group, broadcast to its experts; the mask keeps
    // only the picked group's experts, so each slice is scaled by its picked group's probability.
    const pg = tf.reshape(tf.softmax(tf.reshape(zc, [T, s.g_o, s.r_o])), [T, s.g_o * s.r_o, 1]);
    const pe = tf.reshape(tf.mul(pg, tf.ones([1, 1, s.group])), [T, s.experts]);
    coef = tf.mul(coef, pe) as tf.Tensor2D;
  }
  return { coef, probs, mask };
}
