/**
 * Measures training-step time of a model config on a backend (the full step: batch, forward,
 * backward, clipping, AdamW, loss readback), the way lib/train/mod.ts runs it.
 *
 * ```sh
 * deno run --unstable-webgpu --allow-read --allow-write --allow-env --allow-ffi --allow-sys \
 *   lib/train/bench.ts --backend wasm --steps 10 --warmup 2
 * ```
 *
 * Prints one JSON object (median/min/mean ms per step, tokens/s, achieved GFLOP/s, memory).
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs-core";
import { DEFAULT_MODEL, type ModelConfig } from "../experiment/config.ts";
import { trainBatch } from "../data/batches.ts";
import { initBackend, resolveBackend } from "../backends/mod.ts";
import type { BackendName } from "../experiment/config.ts";
import { createModel, flopsPerToken, loadFfn } from "../models/transformer.ts";
import { Rng } from "../util/rng.ts";
import { AdamW, clipByGlobalNorm } from "./optim.ts";

/** What to measure. */
export interface BenchOptions {
  backend: BackendName;
  model?: ModelConfig;
  batchSize?: number;
  /** Timed steps (after the warmup ones). */
  steps?: number;
  /** Untimed first steps (kernel setup, shader compilation). */
  warmup?: number;
}

/** Measured numbers. */
export interface BenchResult {
  backend: string;
  backend_details: Record<string, string | number | boolean | null>;
  tokens_per_step: number;
  ms_per_step: number[];
  median_ms: number;
  min_ms: number;
  mean_ms: number;
  tokens_per_sec: number;
  /** 3 x forward FLOPs per token x tokens / median time. */
  gflops: number;
  tensors: number;
  bytes: number;
}

/** Times `steps` training steps of a freshly initialised model on random byte tokens. */
export async function benchmark(opts: BenchOptions): Promise<BenchResult> {
  const cfg = opts.model ?? DEFAULT_MODEL, B = opts.batchSize ?? 16, steps = opts.steps ?? 10;
  const warmup = opts.warmup ?? 2;
  const { name } = await resolveBackend(opts.backend);
  const info = await initBackend(name);
  const ffn = await loadFfn(cfg.ffn.kind);
  const model = await createModel(cfg, 1);
  const opt = new AdamW(model.specs, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 });
  const r = new Rng(5), tokens = Uint8Array.from({ length: 200_000 }, () => r.int(cfg.vocab_size));
  const times: number[] = [];
  try {
    for (let s = 0; s < warmup + steps; s++) {
      const t0 = performance.now();
      const b = trainBatch(tokens, 1, s, { batchSize: B, seqLen: cfg.seq_len });
      const loss = tf.tidy(() => {
        const x = tf.tensor2d(b.x, [B, cfg.seq_len], "int32"), y = tf.tensor2d(b.y, [B, cfg.seq_len], "int32");
        const { value, grads } = tf.variableGrads(() => model.loss(x, y), model.variables());
        const { grads: g } = clipByGlobalNorm(model.specs.map((sp) => grads[model.param(sp.name).name]), 1);
        opt.apply(model.params, new Map(model.specs.map((sp, i) => [sp.name, g[i]])), 1e-3);
        return value;
      });
      await loss.data();
      loss.dispose();
      if (s >= warmup) times.push(performance.now() - t0);
    }
    const sorted = [...times].sort((a, b) => a - b), median = sorted[Math.floor(sorted.length / 2)];
    const tokensPerStep = B * cfg.seq_len;
    return {
      backend: name,
      backend_details: info.details,
      tokens_per_step: tokensPerStep,
      ms_per_step: times.map((t) => Math.round(t * 10) / 10),
      median_ms: median,
      min_ms: sorted[0],
      mean_ms: times.reduce((a, b) => a + b, 0) / times.length,
      tokens_per_sec: tokensPerStep / (median / 1000),
      gflops: (3 * flopsPerToken(cfg, ffn) * tokensPerStep) / (median / 1000) / 1e9,
      tensors: tf.memory().numTensors,
      bytes: tf.memory().numBytes,
    };
  } finally {
    opt.dispose();
    model.dispose();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      backend: { type: "string", default: "auto" },
      steps: { type: "string", default: "10" },
      warmup: { type: "string", default: "2" },
      batch: { type: "string", default: "16" },
    },
  });
  const res = await benchmark({
    backend: values.backend as BackendName,
    steps: Number(values.steps),
    warmup: Number(values.warmup),
    batchSize: Number(values.batch),
  });
  console.log(JSON.stringify(res, null, 1));
}
