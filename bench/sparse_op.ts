/**
 * The sparse training op (lib/models/sparse_train.ts) alone: forward + backward of one FineRMoE-shaped layer
 * (default options: 2 output slices x 16 experts, one expert per slice and token, skewed routing), wall and CPU
 * ms per call for each thread count given.
 *
 * ```sh
 * deno run -A bench/sparse_op.ts [d_model=128] [threads=1,2,1,2]
 * ```
 *
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../lib/backends/mod.ts";
import { setNativeThreads } from "../lib/backends/native/mod.ts";
import { sparseMixtureTrain } from "../lib/models/sparse_train.ts";
import { Rng } from "../lib/util/rng.ts";
import { processUsage } from "../lib/train/bench.ts";
import { median as med } from "./report.ts";

if (import.meta.main) {
  const d = Number(Deno.args[0] ?? 128), N = 1024, S = 2, GI = 8, E = S * 2 * GI, W = 3 * d / GI, O = d / S;
  await initBackend("native");
  const r = new Rng(1);
  const x = tf.tensor2d(r.normal(new Float32Array(N * d), 1), [N, d]);
  const w13 = tf.tensor2d(r.normal(new Float32Array(d * 2 * E * W), 0.05), [d, 2 * E * W]);
  const w2 = tf.tensor2d(r.normal(new Float32Array(E * W * O), 0.05), [E * W, O]);
  const c = new Float32Array(N * E), per = E / S;
  for (let t = 0; t < N; t++) {
    for (let s = 0; s < S; s++) {
      const e = s * per + r.int(2) * GI + Math.floor(Math.pow(r.next(), 1.5) * GI);
      c[t * E + e] = 0.1 + r.next() * 0.8;
    }
  }
  const coef = tf.tensor2d(c, [N, E]), dy = tf.tensor2d(r.normal(new Float32Array(N * S * O), 1), [N, S * O]);
  for (const th of (Deno.args[1] ?? "1,2,1,2").split(",").map(Number)) {
    setNativeThreads(th);
    const g = tf.grads((xx: tf.Tensor, a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(sparseMixtureTrain(xx as tf.Tensor2D, coef, { values: c, w13: a, w2: b, slices: S }), dy))
    );
    const walls: number[] = [], cpus: number[] = [];
    for (let i = 0; i < 150; i++) {
      const u0 = processUsage(), t0 = performance.now();
      const out = g([x, w13, w2]);
      out.forEach((o) => o.dataSync());
      out.forEach((o) => o.dispose());
      const t1 = performance.now(), u1 = processUsage();
      if (i >= 30) walls.push(t1 - t0), cpus.push(((u1?.cpu_s ?? 0) - (u0?.cpu_s ?? 0)) * 1000);
    }
    const load = Deno.loadavg()[0].toFixed(2);
    console.log(`d${d} ${th}t fwd+bwd: wall ${med(walls).toFixed(2)} ms, CPU ${med(cpus).toFixed(2)} ms, load ${load}`);
  }
}
