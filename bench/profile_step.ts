/**
 * Where a training step's time goes: per-kernel time (tfjs profiler) of one step of the bench model, after
 * warm-up steps, plus the wall and CPU time of whole steps. A diagnostic for issue 20's FineRMoE target.
 *
 * ```sh
 * deno run -A bench/profile_step.ts --d 256 --ffn finermoe:train_compute=sparse --threads 2
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import os from "node:os";
import * as tf from "@tensorflow/tfjs-core";
import { trainBatch } from "../lib/data/batches.ts";
import { initBackend } from "../lib/backends/mod.ts";
import { createModel } from "../lib/models/transformer.ts";
import { Rng } from "../lib/util/rng.ts";
import { AdamW, clipByGlobalNorm, globalNormScale } from "../lib/train/optim.ts";
import { processUsage } from "../lib/train/bench.ts";
import { sizedModel } from "./config.ts";
import { median as med } from "./report.ts";

if (import.meta.main) {
  const { values: v } = parseArgs({
    options: {
      d: { type: "string", default: "256" },
      seq: { type: "string", default: "256" },
      batch: { type: "string", default: "4" },
      ffn: { type: "string", default: "dense" },
      threads: { type: "string", default: "2" },
      steps: { type: "string", default: "4" },
      top: { type: "string", default: "25" },
      unfused: { type: "boolean", default: false },
      wall: { type: "boolean", default: false },
      "profile-steps": { type: "string", default: "1" },
    },
  });
  const d = Number(v.d), T = Number(v.seq), B = Number(v.batch);
  const cfg = sizedModel(v.ffn!, d, T); // the bench's model: heads of 32, d_ff 3·d; `--ffn` as the bench's
  await initBackend("native", { threads: Number(v.threads) });
  const model = await createModel(cfg, 1);
  const opt = new AdamW(model.specs, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 });
  const r = new Rng(5), tokens = Uint8Array.from({ length: 200_000 }, () => r.int(cfg.vocab_size));
  const rng = new Rng(7);
  const phases = new Map<string, { wall: number[]; cpu: number[] }>();
  let mark = { t: 0, c: 0 };
  const lap = (name?: string) => {
    const t = performance.now(), c = processUsage()!.cpu_s * 1000;
    if (name) {
      const e = phases.get(name) ?? { wall: [], cpu: [] };
      e.wall.push(t - mark.t);
      e.cpu.push(c - mark.c);
      phases.set(name, e);
    }
    mark = { t, c };
  };
  const step = async (s: number) => {
    const b = trainBatch(tokens, 1, s, { batchSize: B, seqLen: T });
    const kept: { loss?: tf.Scalar } = {};
    lap();
    tf.tidy(() => {
      const x = tf.tensor2d(b.x, [B, T], "int32"), y = tf.tensor2d(b.y, [B, T], "int32");
      const { grads } = tf.variableGrads(() => {
        const o = model.objective(x, y, { training: true, rng });
        kept.loss = tf.keep(o.loss);
        lap("forward");
        return o.aux ? tf.add(o.loss, o.aux) as tf.Scalar : o.loss;
      }, model.variables());
      lap("backward");
      const g = model.specs.map((sp) => grads[model.param(sp.name).name]);
      const { scale } = v.unfused ? { scale: null } : globalNormScale(g, 1);
      const gs = v.unfused ? clipByGlobalNorm(g, 1).grads : g;
      lap("clip");
      opt.apply(model.params, new Map(model.specs.map((sp, i) => [sp.name, gs[i]])), 1e-3, { gradScale: scale });
      lap("adamw");
    });
    lap("dispose");
    const l = (await kept.loss!.data())[0];
    kept.loss!.dispose();
    return l;
  };
  for (let s = 0; s < 2; s++) await step(s);
  const walls: number[] = [], cpus: number[] = [];
  for (let s = 2; s < 2 + Number(v.steps); s++) {
    const u0 = processUsage()!, t0 = performance.now();
    await step(s);
    walls.push(performance.now() - t0);
    cpus.push((processUsage()!.cpu_s - u0.cpu_s) * 1000);
  }
  console.log(
    `${v.ffn} d${d} ${v.threads}t: wall ms/step ${walls.map((x) => x.toFixed(1)).join(" ")} (median ${
      med(walls).toFixed(1)
    }), CPU ms/step median ${med(cpus).toFixed(1)}, load ${os.loadavg()[0].toFixed(2)}`,
  );
  for (const [k, e] of phases) {
    const w = e.wall.slice(2), c = e.cpu.slice(2);
    console.log(
      `  ${k.padEnd(9)} wall ${med(w).toFixed(1).padStart(6)} ms  CPU ${med(c).toFixed(1).padStart(6)} ms (medians)`,
    );
  }
  if (v.top === "0") Deno.exit(0);
  // Kernel times as this process's CPU time (other processes inflate wall times on the shared machine),
  // or with --wall as wall time (what a multi-threaded kernel costs the step; native kernels are synchronous).
  (tf.backend() as unknown as { time(f: () => void): Promise<{ kernelMs: number }> }).time = (f) => {
    if (v.wall) {
      const t0 = performance.now();
      f();
      return Promise.resolve({ kernelMs: performance.now() - t0 });
    }
    const c0 = processUsage()!.cpu_s;
    f();
    return Promise.resolve({ kernelMs: (processUsage()!.cpu_s - c0) * 1000 });
  };
  const t0 = performance.now();
  const np = Number(v["profile-steps"]);
  const prof = await tf.profile(async () => {
    for (let s = 0; s < np; s++) await step(99 + s);
  });
  const wall = (performance.now() - t0) / np;
  for (const k of prof.kernels) (k as { kernelTimeMs: number }).kernelTimeMs = (k.kernelTimeMs as number) / np;
  const by = new Map<string, { ms: number; n: number }>();
  for (const k of prof.kernels) {
    const key = `${k.name} ${JSON.stringify(k.inputShapes)}`.slice(0, 110);
    const e = by.get(key) ?? { ms: 0, n: 0 };
    e.ms += k.kernelTimeMs as number;
    e.n += 1 / np;
    by.set(key, e);
  }
  const byName = new Map<string, { ms: number; n: number }>();
  for (const k of prof.kernels) {
    const e = byName.get(k.name) ?? { ms: 0, n: 0 };
    e.ms += k.kernelTimeMs as number;
    e.n += 1 / np;
    byName.set(k.name, e);
  }
  const total = prof.kernels.reduce((a, k) => a + (k.kernelTimeMs as number), 0);
  console.log(
    `profiled step: wall ${wall.toFixed(1)} ms, kernels ${total.toFixed(1)} ${v.wall ? "wall" : "CPU"} ms in ${
      prof.kernels.length / np
    } calls`,
  );
  console.log("by kernel:");
  for (const [k, e] of [...byName].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(v.top))) {
    console.log(`  ${e.ms.toFixed(1).padStart(7)} ms ${String(Math.round(e.n)).padStart(4)}x ${k}`);
  }
  console.log("by kernel and shapes:");
  for (const [k, e] of [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, Number(v.top))) {
    console.log(`  ${e.ms.toFixed(1).padStart(7)} ms ${String(Math.round(e.n)).padStart(4)}x ${k}`);
  }
  Deno.exit(0);
}
