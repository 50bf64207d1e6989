/**
 * The geometry of a BatchMatMul call, shared by the backends whose matmul kernels replace tfjs's (the
 * native backend's CBLAS calls, the wasm backend's per-slice XNNPACK calls): op(a) is [.., m, k], op(b)
 * [.., k, n]. Both handle equal batch dims or a batch-1 side; anything else (general broadcasting,
 * empty products, non-float32) is left to the stock kernel (`supported: false`).
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** Shape facts of `op(a) @ op(b)`. */
export interface MatmulShape {
  /** Whether the fast paths apply (float32, matching k, non-empty, equal batches or a batch of 1). */
  supported: boolean;
  transposeA: boolean;
  transposeB: boolean;
  m: number;
  k: number;
  n: number;
  /** Products in a's and b's leading (batch) dims. */
  batchA: number;
  batchB: number;
  /** Output shape `[...broadcast batch dims, m, n]` (only when supported). */
  outShape: number[];
}

const size = (shape: readonly number[]) => shape.reduce((x, y) => x * y, 1);

/** The geometry of BatchMatMul over a, b with the kernel's transpose attributes. */
export function matmulShape(
  a: { shape: readonly number[]; dtype: string },
  b: { shape: readonly number[]; dtype: string },
  attrs: { transposeA?: unknown; transposeB?: unknown },
): MatmulShape {
  const tA = attrs.transposeA as boolean, tB = attrs.transposeB as boolean;
  const ra = a.shape.length, rb = b.shape.length;
  const outerA = a.shape.slice(0, -2), outerB = b.shape.slice(0, -2);
  const batchA = size(outerA), batchB = size(outerB);
  const m = tA ? a.shape[ra - 1] : a.shape[ra - 2], k = tA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = tB ? b.shape[rb - 1] : b.shape[rb - 2], n = tB ? b.shape[rb - 2] : b.shape[rb - 1];
  const sameOuter = outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]);
  const supported = a.dtype === "float32" && b.dtype === "float32" && k === kb && m * n * k !== 0 &&
    (sameOuter || batchA === 1 || batchB === 1);
  const outShape = supported ? [...tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB), m, n] : [];
  return { supported, transposeA: tA, transposeB: tB, m, k, n, batchA, batchB, outShape };
}
