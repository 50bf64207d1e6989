import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./mod.ts";
await initBackend("wasm");
for (const n of [128, 256, 512, 1024]) {
  const a = tf.randomNormal([n, n]), b = tf.randomNormal([n, n]);
  for (let i = 0; i < 2; i++) { const t = tf.matMul(a, b); await t.data(); t.dispose(); }
  const reps = Math.max(3, Math.floor(2e9 / (2 * n ** 3)));
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) { const t = tf.matMul(a, b); await t.data(); t.dispose(); }
  const ms = (performance.now() - t0) / reps;
  console.log(n, ms.toFixed(2), "ms", (2 * n ** 3 / ms / 1e6).toFixed(1), "GFLOP/s");
}
