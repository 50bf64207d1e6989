/**
 * Inference-only sparse FFN for the mixture layouts of DSMoE and top-k MoE (lib/models/moe.ts
 * `maskedMixture`: E SwiGLU experts of width W side by side in `w13` `[D, 2·E·W]` and `w2`
 * `[E·W, O]`), computing only the active experts with the system BLAS:
 *
 * per expert e (in order): gather the rows t with `coef[t, e] != 0`, `a = xs W_g,e` and
 * `b = xs W_u,e` (two sgemms on the expert's columns of w13, read in place), `h = silu(a) ⊙ b`,
 * `o = h W_2,e` (one sgemm on the expert's rows of w2), and `y[t] += coef[t, e] · o` (rows in order).
 *
 * No tfjs ops between the products (the tfjs form, `sparseMixture` + `expertRunner`, runs ~15 ops per
 * expert plus a gather, split, concat and scatter, each with its JS overhead and a fresh output). The
 * arithmetic is that of the tfjs form on the native backend: the sigmoid in double rounded to
 * float32 (as its Sigmoid kernel), each product rounded to float32, the weighted outputs added to
 * zeros in expert order; tested against it and against the masked form.
 *
 * Not on any run's code path (nothing in training or evaluation imports it): `deno task
 * bench:inference` measures it beside the forms the model uses.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { loadBlas } from "../backends/native/mod.ts";
import { type CpuBackend, f32 } from "../backends/native/tensors.ts";
import type { ModelConfig } from "../core/config.ts";
import { dsmoeGates, dsmoeShape } from "./ffn/dsmoe.ts";
import { topkMoeShape, topkRouting } from "./ffn/topk_moe.ts";
import type { FfnParams } from "./ffn/types.ts";

/** Sizes of {@link sparseMixtureRows}: N rows of width D, E experts of width W, output width O. */
export interface MixtureDims {
  rows: number;
  d: number;
  experts: number;
  width: number;
  out: number;
}

/** Rows of each expert (coef != 0), in token order, per expert. */
export function expertRows(coef: Float32Array, rows: number, experts: number): Int32Array[] {
  const counts = new Int32Array(experts);
  for (let i = 0; i < rows * experts; i++) if (coef[i] !== 0) counts[i % experts]++;
  const out = Array.from({ length: experts }, (_, e) => new Int32Array(counts[e]));
  const fill = new Int32Array(experts);
  for (let t = 0; t < rows; t++) {
    for (let e = 0; e < experts; e++) if (coef[t * experts + e] !== 0) out[e][fill[e]++] = t;
  }
  return out;
}

/**
 * `y [N, O] = Σ_e coef[:, e] · expert_e(x)` over each expert's active rows only (see the module doc).
 * Needs the native backend's BLAS (throws with the reason when it cannot load).
 */
export function sparseMixtureRows(
  x: Float32Array,
  coef: Float32Array,
  w: { w13: Float32Array; w2: Float32Array },
  dims: MixtureDims,
): Float32Array {
  const { rows: N, d: D, experts: E, width: W, out: O } = dims, H = E * W;
  if (x.length !== N * D || coef.length !== N * E || w.w13.length !== D * 2 * H || w.w2.length !== H * O) {
    throw new Error(`sparseMixtureRows: sizes do not match [${N}, ${D}] x ${E} experts of ${W} -> ${O}`);
  }
  const blas = loadBlas(), y = new Float32Array(N * O), groups = expertRows(coef, N, E);
  const max = Math.max(0, ...groups.map((g) => g.length));
  const xs = scratch(0, max * D), a = scratch(1, max * W), b = scratch(2, max * W), o = scratch(3, max * O);
  for (let e = 0; e < E; e++) {
    const g = groups[e], n = g.length;
    if (!n) continue;
    for (let i = 0; i < n; i++) xs.set(x.subarray(g[i] * D, (g[i] + 1) * D), i * D);
    blas.sgemm(false, false, n, W, D, xs, D, w.w13.subarray(e * W), 2 * H, a, W);
    blas.sgemm(false, false, n, W, D, xs, D, w.w13.subarray(H + e * W), 2 * H, b, W);
    for (let j = 0; j < n * W; j++) {
      const s = Math.fround(1 / (1 + Math.exp(-a[j])));
      a[j] = Math.fround(a[j] * s) * b[j];
    }
    blas.sgemm(false, false, n, O, W, a, W, w.w2.subarray(e * W * O), O, o, O);
    for (let i = 0; i < n; i++) {
      const c = coef[g[i] * E + e], yb = g[i] * O, ob = i * O;
      for (let j = 0; j < O; j++) y[yb + j] += Math.fround(o[ob + j] * c);
    }
  }
  return y;
}

/**
 * Work arrays reused across calls (grown when too small): a fresh multi-megabyte Float32Array costs page
 * faults and zeroing on every call (see lib/backends/native/tensors.ts BufferPool). Callers must not keep
 * them; every element used is written before it is read.
 */
const work: Float32Array[] = [];
function scratch(i: number, n: number): Float32Array {
  if (!work[i] || work[i].length < n) work[i] = new Float32Array(Math.max(n, 1));
  return work[i];
}

/** A tensor's float32 values without a copy on the native/cpu backends (a copy elsewhere); read only. */
function values(t: tf.Tensor): Float32Array {
  const b = tf.backend() as unknown as CpuBackend;
  return b.data && typeof b.data.get === "function" ? f32(b, t, "sparseMixtureInfer") : t.dataSync() as Float32Array;
}

/** {@link sparseMixtureRows} on tensors: x `[N, D]`, coef `[N, E]`, the layer's `w13` and `w2`. */
export function sparseMixtureInfer(x: tf.Tensor2D, coef: tf.Tensor2D, w13: tf.Tensor, w2: tf.Tensor): tf.Tensor2D {
  const [N, D] = x.shape, E = coef.shape[1], O = w2.shape[1] as number, W = (w2.shape[0] as number) / E;
  const y = sparseMixtureRows(
    values(x),
    values(coef),
    { w13: values(w13), w2: values(w2) },
    { rows: N, d: D, experts: E, width: W, out: O },
  );
  return tf.tensor2d(y, [N, O]);
}

/**
 * One DSMoE or top-k MoE layer at inference through {@link sparseMixtureInfer}: the variant's own gates or
 * router (tfjs ops), then the active experts only. Other kinds: an error.
 */
export function sparseFfnInfer(x: tf.Tensor2D, p: FfnParams, cfg: ModelConfig): tf.Tensor2D {
  return tf.tidy(() => {
    if (cfg.ffn.kind === "dsmoe") return sparseMixtureInfer(x, dsmoeGates(x, p, dsmoeShape(cfg)).coef, p.w13, p.w2);
    if (cfg.ffn.kind === "topk_moe") {
      return sparseMixtureInfer(x, topkRouting(x, p.router, topkMoeShape(cfg)).coef, p.w13, p.w2);
    }
    throw new Error(`sparseFfnInfer: ffn kind ${cfg.ffn.kind} has no sparse inference path (dsmoe, topk_moe)`);
  });
}
