import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import type { KernelFunc } from "@tensorflow/tfjs-core";
import { kernelOf, registerKernels } from "./register.ts";
import { initBackend } from "./mod.ts";

Deno.test("registerKernels adds kernels, replaces a registered one, and is idempotent", async () => {
  await initBackend("cpu");
  type Maker = { makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo };
  const k = (v: number): KernelFunc => ({ backend }) =>
    (backend as unknown as Maker).makeTensorInfo([1], "float32", new Float32Array([v]));
  const run = async () => {
    const t = tf.engine().runKernel("FlTestConst", {}, {}) as tf.Tensor, v = Array.from(await t.data());
    t.dispose();
    return v;
  };
  try {
    registerKernels("cpu", { FlTestConst: k(1) });
    assert.deepEqual(await run(), [1]);
    registerKernels("cpu", { FlTestConst: k(2) });
    registerKernels("cpu", { FlTestConst: k(2) });
    assert.deepEqual(await run(), [2]);
  } finally {
    tf.unregisterKernel("FlTestConst", "cpu");
  }
  assert.equal(tf.getKernel("FlTestConst", "cpu"), undefined);
});

Deno.test("kernelOf returns the registered kernel and names kernel and backend when there is none", async () => {
  await initBackend("cpu");
  assert.equal(kernelOf("BatchMatMul", "cpu"), tf.getKernel("BatchMatMul", "cpu")!.kernelFunc);
  assert.throws(() => kernelOf("FlNoSuchKernel", "cpu"), /the cpu backend has no FlNoSuchKernel kernel/);
});
