import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./mod.ts";

const gpu = (navigator as { gpu?: GPU }).gpu;
const hasAdapter = gpu ? (await gpu.requestAdapter()) !== null : false;

Deno.test({
  name: "webgpu AddN sums any number of inputs (stock kernel silently returned 0 beyond the binding limit)",
  ignore: !hasAdapter, // needs a WebGPU adapter (llvmpipe is enough)
  fn: async () => {
    await initBackend("webgpu");
    for (const n of [2, 7, 8, 18, 50]) {
      const xs = Array.from({ length: n }, (_, i) => tf.tensor1d([i + 1, -(i + 1)]));
      const s = tf.addN(xs);
      assert.deepEqual(Array.from(await s.data()), [n * (n + 1) / 2, -n * (n + 1) / 2], `addN of ${n}`);
      tf.dispose([...xs, s]);
    }
    await initBackend("cpu");
  },
});
