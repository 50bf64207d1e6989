/**
 * One measurement of `deno task bench`, in its own process (tfjs has one engine per process, and
 * a fresh process per run keeps runs independent): trains the model of a weights file on the
 * batches of a batches file for warmup + steps steps on one backend and writes the
 * {@link BenchResult} as JSON.
 *
 * ```sh
 * deno run ... bench/worker.ts --backend native --weights w.safetensors --batches b.safetensors \
 *   --steps 10 --warmup 2 --threads 1 --out r.json
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { BackendName, ModelConfig } from "../lib/core/config.ts";
import type { Batch } from "../lib/data/batches.ts";
import { readSafetensors } from "../lib/train/safetensors.ts";
import { benchmark } from "../lib/train/bench.ts";

/** Reads the `x` and `y` int32 tensors [steps, batch, seq] of a batches file. */
export async function readBatches(path: string): Promise<Batch[]> {
  const f = await readSafetensors(path);
  const x = f.tensors.get("x"), y = f.tensors.get("y");
  if (!x || !y || x.dtype !== "I32" || y.dtype !== "I32" || x.shape.length !== 3) {
    throw new Error(`${path}: expected int32 tensors x and y of shape [steps, batch, seq]`);
  }
  const [S, B, T] = x.shape, n = B * T, xd = x.data as Int32Array, yd = y.data as Int32Array;
  return Array.from({ length: S }, (_, s) => ({
    x: xd.slice(s * n, (s + 1) * n),
    y: yd.slice(s * n, (s + 1) * n),
    batchSize: B,
    seqLen: T,
  }));
}

if (import.meta.main) {
  const { values: v } = parseArgs({
    options: {
      backend: { type: "string" },
      weights: { type: "string" },
      batches: { type: "string" },
      steps: { type: "string", default: "10" },
      warmup: { type: "string", default: "2" },
      threads: { type: "string", default: "1" },
      out: { type: "string" },
    },
  });
  for (const k of ["backend", "weights", "batches", "out"] as const) {
    if (!v[k]) throw new Error(`bench/worker.ts: --${k} is required`);
  }
  const w = await readSafetensors(v.weights!);
  const model = JSON.parse(w.metadata.model_config) as ModelConfig;
  const weights = new Map([...w.tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }]));
  const batches = await readBatches(v.batches!);
  const res = await benchmark({
    backend: v.backend as BackendName,
    model,
    weights,
    batches,
    batchSize: batches[0].batchSize,
    steps: Number(v.steps),
    warmup: Number(v.warmup),
    threads: Number(v.threads),
  });
  await Deno.writeTextFile(v.out!, JSON.stringify(res));
  Deno.exit(0);
}
