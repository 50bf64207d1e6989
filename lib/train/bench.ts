/**
 * Measures training-step time of a model config on a backend: the full step the trainer runs
 * (batch tensors, forward, backward, global-norm clipping, AdamW, loss readback), with a constant
 * learning rate. bench/main.ts (`deno task bench`) runs this in one child process per measurement.
 *
 * ```sh
 * deno run --unstable-webgpu --allow-read --allow-write --allow-env --allow-ffi --allow-sys --allow-run \
 *   lib/train/bench.ts --backend native --steps 10 --warmup 2 --threads 1
 * ```
 *
 * Prints one JSON object (median/min/mean ms per step, tokens/s, achieved GFLOP/s, memory, the
 * loss of every step as a number and as float32 hex).
 *
 * @module
 */
import { parseArgs } from "node:util";
import os from "node:os";
import * as tf from "@tensorflow/tfjs-core";
import { DEFAULT_MODEL, type FfnConfig, type ModelConfig } from "../core/config.ts";
import { type Batch, trainBatch } from "../data/batches.ts";
import { initBackend, resolveBackend } from "../backends/mod.ts";
import type { BackendName } from "../core/config.ts";
import { createModel, type WeightSource } from "../models/transformer.ts";
import { flopsPerToken, loadFfn, paramCount } from "../models/variants.ts";
import { mixSeed, Rng } from "../util/rng.ts";
import { AdamW, globalNormScale } from "./optim.ts";

/** What to measure. */
export interface BenchOptions {
  backend: BackendName;
  model?: ModelConfig;
  batchSize?: number;
  /** Timed steps (after the warmup ones). */
  steps?: number;
  /** Untimed first steps (kernel setup, shader compilation). */
  warmup?: number;
  /** CPU threads for backends that have them (native: BLAS + kernels). Default 1. */
  threads?: number;
  /** Start weights (else the seeded init of `seed`). */
  weights?: WeightSource["weights"];
  /** Init seed when no weights are given. Default 1. */
  seed?: number;
  /** Batch of each step (index = step, warmup included); default: random byte windows. */
  batches?: readonly Batch[];
  /** Constant learning rate. Default 1e-3. */
  lr?: number;
  /** AdamW weight decay (matrices and embeddings). Default 0.1. */
  weightDecay?: number;
  /** Global gradient-norm clip (0 = off). Default 1. */
  gradClip?: number;
}

/** CPU use during the timed steps. */
export interface CpuLoad {
  /** Cores this process used on average (user + system CPU time / wall time). */
  self_cores: number;
  /** The machine's 1-minute load average at the end (includes this process): contention shows as load > self. */
  load_avg_1m: number;
}

/** Measured numbers. */
export interface BenchResult {
  backend: string;
  backend_details: Record<string, string | number | boolean | null>;
  tokens_per_step: number;
  /** Timed steps' wall time, ms. */
  ms_per_step: number[];
  median_ms: number;
  min_ms: number;
  mean_ms: number;
  tokens_per_sec: number;
  /** 3 x forward FLOPs per token x tokens / median time. */
  gflops: number;
  /** 3 x forward FLOPs per token x tokens per step. */
  flops_per_step: number;
  params: number;
  /** Loss of every step (warmup included), before its update. */
  losses: number[];
  /** The same as float32 bit patterns (8 hex digits), for bit-exact comparisons. */
  loss_hex: string[];
  tensors: number;
  bytes: number;
  /** Peak resident memory of the process (VmHWM), bytes; null where unknown. */
  peak_rss_bytes: number | null;
  cpu_load: CpuLoad | null;
  /** CPU time (user + system, all threads) per timed step, ms: less sensitive to other processes than wall time. */
  cpu_ms_per_step: number | null;
}

/** float32 bit pattern of a number, 8 hex digits. */
export function f32hex(x: number): string {
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, x);
  return dv.getUint32(0).toString(16).padStart(8, "0");
}

interface Usage {
  /** User + system CPU seconds of this process. */
  cpu_s: number;
  /** Peak resident set size, bytes. */
  max_rss: number;
}

let getrusage: ((who: number, buf: Uint8Array) => number) | null | undefined;

/**
 * getrusage(RUSAGE_SELF) through FFI (Deno refuses /proc reads without --allow-all): CPU time and
 * peak RSS. Null without FFI permission or off Linux/macOS.
 */
export function processUsage(): Usage | null {
  if (getrusage === undefined) {
    getrusage = null;
    const libc = Deno.build.os === "linux" ? "libc.so.6" : Deno.build.os === "darwin" ? "libSystem.B.dylib" : null;
    try {
      if (libc) {
        getrusage =
          Deno.dlopen(libc, { getrusage: { parameters: ["i32", "buffer"], result: "i32" } }).symbols.getrusage;
      }
    } catch { /* no --allow-ffi */ }
  }
  if (!getrusage) return null;
  const buf = new Uint8Array(144); // struct rusage on 64-bit Linux and macOS
  if (getrusage(0, buf) !== 0) return null;
  const v = new DataView(buf.buffer), l = (o: number) => Number(v.getBigInt64(o, true));
  const cpu_s = l(0) + l(8) / 1e6 + l(16) + l(24) / 1e6; // ru_utime, ru_stime (timeval)
  const maxrss = l(32); // kilobytes on Linux, bytes on macOS
  return { cpu_s, max_rss: Deno.build.os === "darwin" ? maxrss : maxrss * 1024 };
}

/** Peak resident set size of this process in bytes, or null. */
export function peakRss(): number | null {
  return processUsage()?.max_rss ?? null;
}

function loadAvg(): number | null {
  try {
    return os.loadavg()[0];
  } catch {
    return null;
  }
}

/** Times `warmup + steps` training steps; see the module doc. */
export async function benchmark(opts: BenchOptions): Promise<BenchResult> {
  const cfg = opts.model ?? DEFAULT_MODEL, B = opts.batchSize ?? 16, steps = opts.steps ?? 10;
  const warmup = opts.warmup ?? 2, T = cfg.seq_len;
  if (opts.batches && opts.batches.length < warmup + steps) {
    throw new Error(`benchmark: ${opts.batches.length} batches for ${warmup + steps} steps`);
  }
  const { name } = await resolveBackend(opts.backend);
  const info = await initBackend(name, { threads: opts.threads ?? 1 });
  const ffn = await loadFfn(cfg.ffn.kind);
  const model = await createModel(cfg, opts.seed ?? 1, opts.weights ? { from: { weights: opts.weights } } : {});
  const wd = opts.weightDecay ?? 0.1, lr = opts.lr ?? 1e-3, clip = opts.gradClip ?? 1;
  const opt = new AdamW(model.specs, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: wd });
  let tokens: Uint8Array | null = null;
  const batchOf = (s: number): Batch => {
    if (opts.batches) return opts.batches[s];
    if (!tokens) {
      const r = new Rng(5);
      tokens = Uint8Array.from({ length: 200_000 }, () => r.int(cfg.vocab_size));
    }
    return trainBatch(tokens, 1, s, { batchSize: B, seqLen: T });
  };
  const times: number[] = [], losses: number[] = [], rng = new Rng(mixSeed(opts.seed ?? 1, 0x7a1));
  let load0: { usage: Usage | null; t: number } | null = null;
  try {
    for (let s = 0; s < warmup + steps; s++) {
      if (s === warmup) load0 = { usage: processUsage(), t: performance.now() };
      const t0 = performance.now();
      const b = batchOf(s);
      // As lib/train/mod.ts: the objective adds the FFN variants' auxiliary losses; the reported loss is the cross-entropy.
      const kept: { loss?: tf.Scalar } = {};
      tf.tidy(() => {
        const x = tf.tensor2d(b.x, [b.batchSize, b.seqLen], "int32");
        const y = tf.tensor2d(b.y, [b.batchSize, b.seqLen], "int32");
        const { grads } = tf.variableGrads(() => {
          const o = model.objective(x, y, { training: true, rng });
          kept.loss = tf.keep(o.loss);
          return o.aux ? tf.add(o.loss, o.aux) as tf.Scalar : o.loss;
        }, model.variables());
        const g = model.specs.map((sp) => grads[model.param(sp.name).name]);
        const { scale } = globalNormScale(g, clip);
        opt.apply(model.params, new Map(model.specs.map((sp, i) => [sp.name, g[i]])), lr, { gradScale: scale });
      });
      losses.push((await kept.loss!.data())[0]);
      kept.loss!.dispose();
      if (s >= warmup) times.push(performance.now() - t0);
    }
    const u1 = processUsage(), la = loadAvg();
    const load = load0?.usage && u1 && la !== null
      ? {
        self_cores: Math.round((u1.cpu_s - load0.usage.cpu_s) / ((performance.now() - load0.t) / 1000) * 100) / 100,
        load_avg_1m: la,
      }
      : null;
    const sorted = [...times].sort((a, b) => a - b), median = sorted[Math.floor(sorted.length / 2)];
    const tokensPerStep = B * T, flopsPerStep = 3 * flopsPerToken(cfg, ffn) * tokensPerStep;
    return {
      backend: name,
      backend_details: info.details,
      tokens_per_step: tokensPerStep,
      ms_per_step: times.map((t) => Math.round(t * 10) / 10),
      median_ms: median,
      min_ms: sorted[0],
      mean_ms: times.reduce((a, b) => a + b, 0) / times.length,
      tokens_per_sec: tokensPerStep / (median / 1000),
      gflops: flopsPerStep / (median / 1000) / 1e9,
      flops_per_step: flopsPerStep,
      params: paramCount(cfg, ffn),
      losses,
      loss_hex: losses.map(f32hex),
      tensors: tf.memory().numTensors,
      bytes: tf.memory().numBytes,
      peak_rss_bytes: peakRss(),
      cpu_load: load,
      cpu_ms_per_step: load0?.usage && u1 ? (u1.cpu_s - load0.usage.cpu_s) * 1000 / steps : null,
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
      threads: { type: "string", default: "1" },
      ffn: { type: "string", default: "dense" },
    },
  });
  const res = await benchmark({
    backend: values.backend as BackendName,
    model: { ...DEFAULT_MODEL, ffn: { kind: values.ffn! } as FfnConfig },
    steps: Number(values.steps),
    warmup: Number(values.warmup),
    batchSize: Number(values.batch),
    threads: Number(values.threads),
  });
  console.log(JSON.stringify(res, null, 1));
  Deno.exit(0); // OpenBLAS/OpenMP threads: leave without waiting on them
}
