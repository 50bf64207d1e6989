import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./mod.ts";
import { valuesOn } from "./testing.ts";

Deno.test("valuesOn: runs on the named backend, returns the outputs' values as copies and leaves no tensor behind", async () => {
  await initBackend("cpu");
  const before = tf.memory().numTensors;
  const [a, b] = await valuesOn("cpu", () => [tf.add(tf.tensor([1, 2, 3]), 1), tf.square(tf.tensor([[2, -3]]))]);
  assert.equal(tf.getBackend(), "cpu");
  assert.deepEqual([...a], [2, 3, 4]);
  assert.deepEqual([...b], [4, 9]);
  assert.ok(a instanceof Float32Array && b instanceof Float32Array);
  assert.equal(tf.memory().numTensors, before);
});
