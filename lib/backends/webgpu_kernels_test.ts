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

Deno.test({
  name: "webgpu BatchMatMul with transposeB (explicit transpose on the vec4 path) equals cpu, every transpose and rank",
  ignore: !hasAdapter,
  fn: async () => {
    // [a shape, b shape, transposeA, transposeB]: vec4-eligible shapes, odd ones (stock path), batched, broadcast batch.
    const cases: [number[], number[], boolean, boolean][] = [
      [[64, 32], [48, 32], false, true],
      [[32, 64], [48, 32], true, true],
      [[64, 32], [32, 48], false, false],
      [[33, 31], [47, 31], false, true],
      [[3, 20, 16], [3, 12, 16], false, true],
      [[3, 20, 16], [1, 12, 16], false, true],
      [[2, 8, 24], [2, 12, 8], true, true],
    ];
    const r = (shape: number[], seed: number) => tf.randomUniform(shape, -1, 1, "float32", seed);
    const want: Float32Array[] = [];
    await initBackend("cpu");
    for (const [i, [sa, sb, ta, tb]] of cases.entries()) {
      const [a, b] = [r(sa, i), r(sb, 100 + i)];
      const y = tf.matMul(a, b, ta, tb);
      want.push((await y.data()) as Float32Array);
      tf.dispose([a, b, y]);
    }
    await initBackend("webgpu");
    for (const [i, [sa, sb, ta, tb]] of cases.entries()) {
      const [a, b] = [r(sa, i), r(sb, 100 + i)];
      const y = tf.matMul(a, b, ta, tb);
      const got = (await y.data()) as Float32Array;
      assert.equal(got.length, want[i].length, `case ${i}: size`);
      const diff = got.reduce((m, v, j) => Math.max(m, Math.abs(v - want[i][j])), 0);
      assert.ok(diff < 1e-5, `case ${i} [${sa}]x[${sb}] tA=${ta} tB=${tb}: max |diff| ${diff}`);
      // The replacement calls the Transpose kernel directly (not through the engine): count its calls.
      const stock = tf.getKernel("Transpose", "webgpu")!;
      let calls = 0;
      tf.unregisterKernel("Transpose", "webgpu");
      tf.registerKernel({ ...stock, kernelFunc: (x) => (calls++, stock.kernelFunc(x)) });
      try {
        tf.dispose(tf.matMul(a, b, ta, tb));
      } finally {
        tf.unregisterKernel("Transpose", "webgpu");
        tf.registerKernel(stock);
      }
      const vec4 = tb && sb.at(-2)! % 4 === 0 && (ta ? sa.at(-1)! % 4 === 0 : sa.at(-1)! % 4 === 0);
      assert.equal(calls, vec4 ? 1 : 0, `case ${i}: B transposed explicitly iff vec4-eligible`);
      tf.dispose([a, b, y]);
    }
    await initBackend("cpu");
  },
});
