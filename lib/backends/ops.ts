/**
 * The few tensor helpers model code uses, so models stay backend-agnostic and readable.
 *
 * Matmul strategy: models call plain {@link matmul}/{@link batchMatmul} (and tfjs autodiff emits
 * transposed/batched matmuls for the gradients). On wasm, the `BatchMatMul` kernel installed by
 * lib/backends/wasm_kernels.ts routes every one of them to XNNPACK (explicit transposes, per-slice
 * 2-D products for batches), so no customGrad wrappers are needed in model code. Other backends
 * run tfjs's own kernels.
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";

/** `op(a) @ op(b)` for rank-2 operands. */
export function matmul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor2D {
  if (a.rank !== 2 || b.rank !== 2) {
    throw new Error(`matmul expects rank-2 operands, got [${a.shape}] and [${b.shape}] (use batchMatmul)`);
  }
  return tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, transposeA, transposeB);
}

/** Batched `op(a) @ op(b)` over the leading dimensions (equal, or one side without them). */
export function batchMatmul<T extends tf.Tensor>(a: T, b: tf.Tensor, transposeA = false, transposeB = false): T {
  return tf.matMul(a, b, transposeA, transposeB) as T;
}

/**
 * Splits the last axis into pieces of the given sizes. (`tf.split`: its gradient is one concat,
 * while slices would each need a pad + add; on wasm the SplitV kernel is replaced by a zero-copy
 * one, see wasm_kernels.ts.)
 */
export function splitLast(x: tf.Tensor, sizes: readonly number[]): tf.Tensor[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total !== x.shape[x.rank - 1]) {
    throw new Error(`splitLast: sizes [${sizes}] sum to ${total}, not the last dimension of [${x.shape}]`);
  }
  return tf.split(x, [...sizes], -1);
}

/** SiLU (swish): x * sigmoid(x). */
export function silu<T extends tf.Tensor>(x: T): T {
  return tf.mul(x, tf.sigmoid(x));
}
