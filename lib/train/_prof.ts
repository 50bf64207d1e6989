import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/mod.ts";
import { createModel } from "../models/transformer.ts";
import { DEFAULT_MODEL } from "../experiment/config.ts";
import { trainBatch } from "../data/batches.ts";
import { AdamW, clipByGlobalNorm } from "./optim.ts";
await initBackend((Deno.args[0] ?? "wasm") as "wasm");
const m = await createModel(DEFAULT_MODEL, 1);
const opt = new AdamW(m.specs, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 });
const toks = new Uint8Array(100000); for (let i = 0; i < toks.length; i++) toks[i] = (i * 7 + (i >> 3)) & 255;
const b = trainBatch(toks, 1, 0, { batchSize: 16, seqLen: 128 });
const x = tf.tensor2d(b.x, [16, 128], "int32"), y = tf.tensor2d(b.y, [16, 128], "int32");
const mode = Deno.args[1] ?? "full";
const step = () => tf.tidy(() => {
  if (mode === "fwd") return m.loss(x, y);
  const { value, grads } = tf.variableGrads(() => m.loss(x, y), m.variables());
  if (mode === "grad") return value;
  const named = m.specs.map((s) => grads[m.param(s.name).name]);
  const { grads: c, norm } = clipByGlobalNorm(named, 1);
  opt.apply(m.params, new Map(m.specs.map((s, i) => [s.name, c[i]])), 1e-3);
  return value;
});
for (let i = 0; i < 2; i++) { const l = step(); await l.data(); l.dispose(); }
const ts: number[] = [];
for (let i = 0; i < 5; i++) { const t0 = performance.now(); const l = step(); await l.data(); l.dispose(); ts.push(performance.now() - t0); }
console.log(mode, "ms", ts.map((t) => t.toFixed(0)).join(" "));
if (Deno.args[2] === "prof") {
  const agg = new Map<string, { ms: number; n: number }>();
  const info = await tf.profile(async () => { const l = step(); await l.data(); l.dispose(); });
  for (const k of info.kernels) { const a = agg.get(k.name) ?? { ms: 0, n: 0 }; a.ms += (k.kernelTimeMs as number); a.n++; agg.set(k.name, a); }
  const tot = [...agg.values()].reduce((s, a) => s + a.ms, 0);
  console.log("kernels", info.kernels.length, "total kernel ms", tot.toFixed(0));
  for (const [k, a] of [...agg].sort((p, q) => q[1].ms - p[1].ms).slice(0, 18)) console.log(k.padEnd(22), a.ms.toFixed(1).padStart(8), String(a.n).padStart(6));
}
if (Deno.args[3] === "mm") {
  const info = await tf.profile(async () => { const l = step(); await l.data(); l.dispose(); });
  const agg = new Map<string, { ms: number; n: number }>();
  for (const k of info.kernels) if (k.name === "BatchMatMul") { const key = JSON.stringify(k.inputShapes) + JSON.stringify((k as any).extraInfo ?? ""); const a = agg.get(key) ?? { ms: 0, n: 0 }; a.ms += k.kernelTimeMs as number; a.n++; agg.set(key, a); }
  for (const [k, a] of [...agg].sort((p, q) => q[1].ms - p[1].ms)) console.log(k.padEnd(50), a.ms.toFixed(1).padStart(8), a.n);
}
