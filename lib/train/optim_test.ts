import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/mod.ts";
import { DEFAULT_TRAIN } from "../core/config.ts";
import type { ParamSpec } from "../models/ffn/types.ts";
import { AdamW, clipByGlobalNorm, learningRate } from "./optim.ts";

Deno.test("AdamW: two steps equal a hand computation (decay only where decay = true)", async () => {
  await initBackend("cpu");
  const specs: ParamSpec[] = [
    { name: "w", shape: [2], init: "normal", decay: true },
    { name: "g", shape: [2], init: "ones", decay: false },
  ];
  const hyper = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1 };
  const params = new Map([["w", tf.variable(tf.tensor1d([0.5, -1]))], ["g", tf.variable(tf.tensor1d([1, 2]))]]);
  const grads = [[0.1, -0.2], [0.3, 0.05]];
  const opt = new AdamW(specs, hyper);
  const lrs = [1e-2, 5e-3];
  for (let t = 0; t < 2; t++) {
    tf.tidy(() =>
      opt.apply(
        params,
        new Map([["w", tf.tensor1d(grads[0].map((g) => g * (t + 1)))], ["g", tf.tensor1d(grads[1])]]),
        lrs[t],
      )
    );
  }
  // By hand (float64): m, v, bias corrections, decoupled decay.
  const hand = (p0: number, g: number[], decay: boolean) => {
    let p = p0, m = 0, v = 0;
    for (let t = 1; t <= 2; t++) {
      const lr = lrs[t - 1];
      if (decay) p *= 1 - lr * 0.1;
      m = 0.9 * m + 0.1 * g[t - 1];
      v = 0.95 * v + 0.05 * g[t - 1] ** 2;
      p -= (lr / (1 - 0.9 ** t)) * m / (Math.sqrt(v) / Math.sqrt(1 - 0.95 ** t) + 1e-8);
    }
    return p;
  };
  const w = await params.get("w")!.data(), g = await params.get("g")!.data();
  const expectW = [hand(0.5, [0.1, 0.2], true), hand(-1, [-0.2, -0.4], true)];
  const expectG = [hand(1, [0.3, 0.3], false), hand(2, [0.05, 0.05], false)];
  for (let i = 0; i < 2; i++) {
    assert.ok(Math.abs(w[i] - expectW[i]) < 1e-6, `w[${i}] ${w[i]} vs ${expectW[i]}`);
    assert.ok(Math.abs(g[i] - expectG[i]) < 1e-6, `g[${i}] ${g[i]} vs ${expectG[i]}`);
  }
  // First step moves each coordinate by ~lr (Adam's normalised step), decay adds lr*wd*p.
  assert.ok(Math.abs(expectG[0] - (1 - 1e-2 - 5e-3)) < 1e-4);
  const st = await opt.getState();
  assert.equal(st.step, 2);
  assert.ok(Math.abs(st.m.get("g")![0] - (0.9 * 0.03 + 0.03)) < 1e-7);
  // Restoring the state continues identically.
  const opt2 = new AdamW(specs, hyper, st);
  assert.equal(opt2.step, 2);
  assert.deepEqual((await opt2.getState()).v.get("w"), st.v.get("w"));
  opt.dispose();
  opt2.dispose();
  tf.dispose([...params.values()]);
});

Deno.test("schedule: linear warmup, cosine to min_lr_ratio at the last step", () => {
  const cfg = { ...DEFAULT_TRAIN, lr: 1e-3, warmup_steps: 10, steps: 110, min_lr_ratio: 0.1 };
  assert.equal(learningRate(0, cfg), 1e-4);
  assert.equal(learningRate(4, cfg), 5e-4);
  assert.equal(learningRate(9, cfg), 1e-3);
  assert.equal(learningRate(10, cfg), 1e-3); // decay starts at the peak
  const mid = 10 + (110 - 1 - 10) / 2; // 59.5: halfway -> (lr + min) / 2
  assert.ok(Math.abs((learningRate(59, cfg) + learningRate(60, cfg)) / 2 - 5.5e-4) < 1e-7, String(mid));
  assert.ok(Math.abs(learningRate(109, cfg) - 1e-4) < 1e-15);
  for (let s = 11; s < 110; s++) assert.ok(learningRate(s, cfg) < learningRate(s - 1, cfg));
  assert.equal(learningRate(0, { ...cfg, warmup_steps: 0 }), 1e-3);
  assert.equal(learningRate(0, { ...cfg, warmup_steps: 0, steps: 1 }), 1e-4);
});

Deno.test("global-norm clipping scales to the limit, leaves small gradients alone, 0 = off", async () => {
  await initBackend("cpu");
  const g = () => [tf.tensor1d([3, 0]), tf.tensor2d([[0, 4]])]; // norm 5
  const c = clipByGlobalNorm(g(), 1);
  assert.ok(Math.abs((await c.norm.data())[0] - 5) < 1e-6);
  const after = Math.hypot(...(await c.grads[0].data()), ...(await c.grads[1].data()));
  assert.ok(Math.abs(after - 1) < 1e-5, `norm after clipping ${after}`);
  assert.ok(Math.abs((await c.grads[0].data())[0] - 0.6) < 1e-5);
  const big = clipByGlobalNorm(g(), 10);
  assert.deepEqual(Array.from(await big.grads[1].data()), [0, 4]);
  const off = clipByGlobalNorm(g(), 0);
  assert.deepEqual(Array.from(await off.grads[0].data()), [3, 0]);
  assert.ok(Math.abs((await off.norm.data())[0] - 5) < 1e-6);
});
