/**
 * Test fixtures of the routed FFN variants: float64 reference experts, random parameters, a
 * recording FfnContext and a closeness assertion.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { DEFAULT_MODEL, type ModelConfig } from "../core/config.ts";
import { Rng } from "../util/rng.ts";
import type { FfnContext, FfnVariant } from "./ffn/types.ts";

/** A tiny dense model (d 8, 2 layers, d_ff 24, vocab 16, seq 6) that the FFN variants' tests vary. */
export const TINY_MODEL: ModelConfig = {
  ...DEFAULT_MODEL,
  vocab_size: 16,
  d_model: 8,
  n_layers: 2,
  n_heads: 2,
  d_ff: 24,
  seq_len: 6,
  init_std: 0.3,
  ffn: { kind: "dense" },
};

/** Element (r, c) of a row-major matrix with `cols` columns. */
export const at = (m: ArrayLike<number>, cols: number, r: number, c: number): number => m[r * cols + c];

/**
 * Float64 SwiGLU of one token `x` (length d) with explicit gate/up columns of `w13` (`[d, w13cols]`)
 * and rows of `w2` (`[·, outCols]`), returning the columns `outCol0..outCol0+outN` of the output.
 */
export function swigluRef(
  x: ArrayLike<number>,
  w13: ArrayLike<number>,
  w13cols: number,
  gateCols: readonly number[],
  upCols: readonly number[],
  w2: ArrayLike<number>,
  w2rows: readonly number[],
  w2cols: number,
): number[] {
  const d = x.length, out = new Array(w2cols).fill(0);
  gateCols.forEach((gc, j) => {
    let a = 0, b = 0;
    for (let k = 0; k < d; k++) {
      a += x[k] * at(w13, w13cols, k, gc);
      b += x[k] * at(w13, w13cols, k, upCols[j]);
    }
    const h = (a / (1 + Math.exp(-a))) * b;
    for (let c = 0; c < w2cols; c++) out[c] += h * at(w2, w2cols, w2rows[j], c);
  });
  return out;
}

/** `n..n+len` as an array. */
export const range = (n: number, len: number): number[] => Array.from({ length: len }, (_, i) => n + i);

/**
 * Float64 output (length d) of expert `e` of `E` packed experts of width `w` (H = E w): gate columns
 * e w.. and up columns H + e w.. of `p.w13` ([d, 2H]), rows e w.. of `p.w2` ([H, d]).
 */
export function expertRef(
  x: ArrayLike<number>,
  p: Record<string, ArrayLike<number>>,
  o: { e: number; w: number; H: number; d: number },
): number[] {
  const { e, w, H, d } = o;
  return swigluRef(x, p.w13, 2 * H, range(e * w, w), range(H + e * w, w), p.w2, range(e * w, w), d);
}

/** Σ c · out over the (coefficient, output) terms, in order, as a length-d array. */
export function weightedSum(d: number, terms: Iterable<[number, readonly number[]]>): number[] {
  const y = new Array(d).fill(0);
  for (const [c, out] of terms) out.forEach((v, j) => (y[j] += c * v));
  return y;
}

/** The first `n` rows (tokens) of a flat row-major batch with `d` columns, as views (no copies). */
export const tokenRows = (xs: Float32Array, n: number, d: number): Float32Array[] =>
  range(0, n).map((t) => xs.subarray(t * d, (t + 1) * d));

/** Random parameters (N(0, std²)) for every spec of a variant's layer. */
export function randomParams(v: FfnVariant, cfg: ModelConfig, seed: number, std = 0.5): Record<string, tf.Tensor> {
  const r = new Rng(seed), out: Record<string, tf.Tensor> = {};
  for (const s of v.params(cfg)) {
    out[s.name] = tf.tensor(r.normal(new Float32Array(s.shape.reduce((a, b) => a * b, 1)), std), s.shape);
  }
  return out;
}

/** A context that records aux losses and stats. */
export function recordingCtx(
  cfg: ModelConfig,
  training: boolean,
): FfnContext & { aux: tf.Scalar[]; stats: Record<string, tf.Scalar> } {
  const aux: tf.Scalar[] = [], stats: Record<string, tf.Scalar> = {};
  return {
    cfg,
    layer: 0,
    training,
    rng: null,
    aux,
    stats,
    addAuxLoss: (l) => aux.push(l),
    addStat: (n, v) => (stats[n] = v),
  };
}

/** Asserts |a - b| ≤ tol·(1 + |b|) elementwise. */
export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: lengths ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
  }
}
