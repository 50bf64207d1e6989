import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./mod.ts";
import { installWasmKernels } from "./wasm_kernels.ts";
const mode = Deno.args[0];
if (mode === "stock") {
  tf.enableProdMode();
  const w = await import("@tensorflow/tfjs-backend-wasm");
  const { wasmDistDir } = await import("./mod.ts");
  w.setWasmPaths(wasmDistDir());
  await tf.setBackend("wasm");
} else await initBackend("wasm");
const time = async (name: string, f: () => tf.Tensor, flops: number) => {
  for (let i = 0; i < 2; i++) {
    const t = f();
    await t.data();
    t.dispose();
  }
  const n = 10, t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const t = f();
    await t.data();
    t.dispose();
  }
  const ms = (performance.now() - t0) / n;
  console.log(mode, name, ms.toFixed(2), "ms", (flops / ms / 1e6).toFixed(1), "GFLOP/s");
};
const a = tf.randomNormal([64, 128, 32]), b = tf.randomNormal([64, 32, 128]), bt = tf.randomNormal([64, 128, 32]);
const x = tf.randomNormal([2048, 128]), w = tf.randomNormal([128, 768]), dy = tf.randomNormal([2048, 768]);
await time("qk^T [64,128,32]x[64,128,32]^T", () => tf.matMul(a, bt, false, true), 2 * 64 * 128 * 128 * 32);
await time("pv [64,128,128]x[64,128,32]", () => {
  const p = tf.matMul(a, b);
  const r = tf.matMul(p, a);
  p.dispose();
  return r;
}, 2 * 2 * 64 * 128 * 128 * 32);
await time("x@w [2048,128]x[128,768]", () => tf.matMul(x, w), 2 * 2048 * 128 * 768);
await time("x^T@dy", () => tf.matMul(x, dy, true, false), 2 * 2048 * 128 * 768);
await time("dy@w^T", () => tf.matMul(dy, w, false, true), 2 * 2048 * 128 * 768);
