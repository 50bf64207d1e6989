import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./mod.ts";
import { batchMatmul, matmul, silu, splitLast } from "./ops.ts";

Deno.test("splitLast splits the last axis by sizes and checks them", async () => {
  await initBackend("cpu");
  const x = tf.tensor2d([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]);
  const [a, b] = splitLast(x, [2, 3]);
  assert.deepEqual(await a.array(), [[1, 2], [6, 7]]);
  assert.deepEqual(await b.array(), [[3, 4, 5], [8, 9, 10]]);
  assert.throws(() => splitLast(x, [2, 2]), /sum to 4, not the last dimension of \[2,5\]/);
  tf.dispose([x, a, b]);
});

Deno.test("matmul/batchMatmul/silu compute the right values", async () => {
  await initBackend("cpu");
  const a = tf.tensor2d([[1, 2], [3, 4]]), b = tf.tensor2d([[5, 6], [7, 8]]);
  assert.deepEqual(await matmul(a, b).array(), [[19, 22], [43, 50]]);
  assert.deepEqual(await matmul(a, b, true, false).array(), [[26, 30], [38, 44]]);
  assert.deepEqual(await batchMatmul(tf.stack([a, b]), a, false, true).array(), [
    [[5, 11], [11, 25]],
    [[17, 39], [23, 53]],
  ]);
  assert.throws(() => matmul(tf.zeros([1, 2, 2]), a), /rank-2/);
  const s = await silu(tf.tensor1d([0, 1, -2])).data();
  assert.ok(Math.abs(s[1] - 1 / (1 + Math.exp(-1))) < 1e-6 && s[0] === 0);
});
