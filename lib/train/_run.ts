import { train } from "./mod.ts";
import { DEFAULT_DATA, DEFAULT_MODEL, DEFAULT_TRAIN, type RunConfig } from "../experiment/config.ts";
import type { Dataset } from "../data/types.ts";
import * as tf from "@tensorflow/tfjs-core";
const be = (Deno.args[0] ?? "wasm") as "wasm";
const steps = Number(Deno.args[1] ?? 12);
const parts: Uint8Array[] = [];
for (const e of Deno.readDirSync("/usr/share/common-licenses")) if (e.isFile) parts.push(Deno.readFileSync("/usr/share/common-licenses/" + e.name));
const all = new Uint8Array(parts.reduce((a, p) => a + p.length, 0)); let o = 0; for (const p of parts) { all.set(p, o); o += p.length; }
const cut = Math.floor(all.length * 0.9);
const dataset = { manifest: {} as never, vocabSize: 256, train: all.subarray(0, cut), val: all.subarray(cut) } as Dataset;
const config: RunConfig = { experiment: "dev", variant: "dense", seed: 1, backend: be, data: DEFAULT_DATA, model: DEFAULT_MODEL,
  train: { ...DEFAULT_TRAIN, steps, warmup_steps: 2, eval_every: 1000, eval_batches: 2, checkpoint_every: 0 } };
const dir = await Deno.makeTempDir();
const times: number[] = []; let last = performance.now();
const out = await train({ config, dataset, dir, progress: (p) => { const now = performance.now(); if (p.phase === "train") { times.push(now - last); console.log(p.step, p.loss?.toFixed(6), (now - last).toFixed(0), "ms", tf.memory().numTensors, tf.memory().numBytes); } last = now; } });
const t = times.slice(2).sort((a, b) => a - b);
console.log("median ms/step (excl. first 2)", t[Math.floor(t.length / 2)].toFixed(0), JSON.stringify(out.summary));
await Deno.remove(dir, { recursive: true });
