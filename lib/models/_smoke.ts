import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/mod.ts";
import { createModel, flopsPerToken, paramCount } from "./transformer.ts";
import { DEFAULT_MODEL } from "../experiment/config.ts";
import { trainBatch } from "../data/batches.ts";
const be = (Deno.args[0] ?? "wasm") as "wasm";
console.log(await initBackend(be));
const m = await createModel(DEFAULT_MODEL, 1);
console.log(
  "params",
  paramCount(DEFAULT_MODEL),
  [...m.params.values()].reduce((a, v) => a + v.size, 0),
  "flops",
  flopsPerToken(DEFAULT_MODEL),
);
const toks = new Uint8Array(100000);
for (let i = 0; i < toks.length; i++) toks[i] = (i * 7 + (i >> 3)) & 255;
const b = trainBatch(toks, 1, 0, { batchSize: 16, seqLen: 128 });
const x = tf.tensor2d(b.x, [16, 128], "int32"), y = tf.tensor2d(b.y, [16, 128], "int32");
for (let i = 0; i < 4; i++) {
  const t0 = performance.now();
  const l = tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => m.loss(x, y));
    return value;
  });
  console.log("loss", (await l.data())[0], (performance.now() - t0).toFixed(0), "ms", tf.memory().numTensors);
  l.dispose();
}
