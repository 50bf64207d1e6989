import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./mod.ts";
import { adamwUpdate, crossEntropy, expertGate, finedeepBlock, rmsnorm, swiglu } from "./fused.ts";
import { Rng } from "../util/rng.ts";
import { valuesOn } from "./testing.ts";

Deno.test("wasm fused expert gate (JS over the heap) matches the composite ops on cpu, values and gradients", async () => {
  for (const [n, k, e] of [[1, 1, 1], [7, 3, 5], [130, 4, 24]]) {
    const rng = new Rng(n + k + e);
    const prod = rng.normal(new Float32Array(n * k * e), 1), u = rng.normal(new Float32Array(k * e), 1);
    const w = rng.normal(new Float32Array(n * k * e), 1);
    const run = async (backend: "cpu" | "wasm") => {
      const vals = await valuesOn(backend, () => {
        const p = tf.tensor2d(prod, [n, k * e]), uu = tf.tensor2d(u, [k, e]), ww = tf.tensor2d(w, [n, k * e]);
        const f = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(expertGate(a as tf.Tensor2D, b, k), ww));
        return [expertGate(p, uu, k), ...tf.grads(f)([p, uu])];
      });
      assert.equal(tf.getKernel("FlExpertGate", backend) !== undefined, backend === "wasm");
      return vals;
    };
    const ref = await run("cpu"), got = await run("wasm");
    for (const [i, what] of ["gated", "d prod", "d u"].entries()) {
      let worst = 0, scale = 0;
      for (let j = 0; j < ref[i].length; j++) {
        worst = Math.max(worst, Math.abs(got[i][j] - ref[i][j]));
        scale = Math.max(scale, Math.abs(ref[i][j]));
      }
      assert.ok(
        worst <= 1e-5 * Math.max(scale, 1),
        `N=${n} K=${k} E=${e} ${what}: max |diff| ${worst} (scale ${scale})`,
      );
    }
  }
});

Deno.test("wasm FlFinedeep: forward + backward leave no tensors or heap ids behind and repeat bit for bit", async () => {
  await initBackend("wasm");
  const [N, d, M, K, E] = [37, 12, 3, 2, 5], H = K * E, rng = new Rng(3);
  const t = (shape: number[], s = 1) =>
    tf.tensor(rng.normal(new Float32Array(shape.reduce((a, b) => a * b)), s), shape);
  const x = t([N, d]), h = t([N, d]), w = t([N, d]);
  const subs = Array.from(
    { length: M },
    () => ({ w13: t([d, 2 * H], 0.3), w2: t([H, d], 0.3), router: t([K, d], 0.3) }),
  );
  const inputs = [x, h, ...subs.flatMap((s) => [s.w13, s.w2, s.router])];
  const step = () =>
    tf.tidy(() => {
      const f = (...a: tf.Tensor[]) => {
        const ss = subs.map((_, i) => ({ w13: a[2 + 3 * i], w2: a[3 + 3 * i], router: a[4 + 3 * i] }));
        const y = finedeepBlock(a[0] as tf.Tensor2D, a[1] as tf.Tensor2D, ss, { k: K, eps: 1e-5 });
        assert.ok(y, "wasm has the fused Finedeep block");
        return tf.sum(tf.mul(y, w));
      };
      const { value, grads } = tf.valueAndGrads(f)(inputs);
      return [value, ...grads];
    });
  const be = tf.backend() as unknown as { numDataIds(): number };
  tf.dispose(step());
  const tensors = tf.memory().numTensors, ids = be.numDataIds();
  const a = step(), b = step();
  const bits = (ts: tf.Tensor[]) =>
    ts.map((v) => Array.from(new Uint32Array((v.dataSync() as Float32Array).slice().buffer)));
  assert.deepEqual(bits(a), bits(b));
  assert.ok(a.slice(1).every((g) => (g.dataSync() as Float32Array).some((v) => v !== 0)), "every gradient is nonzero");
  tf.dispose([...a, ...b]);
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(be.numDataIds(), ids);
  tf.dispose(inputs.concat(w));
});

Deno.test("wasm training with the fused Finedeep block: two processes give the same loss bits", async () => {
  const bench = new URL("../train/bench.ts", import.meta.url).pathname;
  const run = async () => {
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", bench, "--backend", "wasm", "--ffn", "finedeep", "--steps", "2", "--warmup", "0"],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    assert.ok(r.success, new TextDecoder().decode(r.stderr).slice(-1500));
    return JSON.parse(out.slice(out.indexOf("{"))) as { loss_hex: string[]; backend: string };
  };
  const [a, b] = [await run(), await run()];
  assert.equal(a.backend, "wasm");
  assert.equal(a.loss_hex.length, 2);
  assert.deepEqual(a.loss_hex, b.loss_hex);
});

/** Values and gradients of sum(f(inputs) * w) on cpu (composite ops) and wasm (SIMD kernel `kernel`). */
async function compareOnWasm(what: string, kernel: string, shapes: number[][], f: (...xs: tf.Tensor[]) => tf.Tensor) {
  const rng = new Rng(shapes.flat().reduce((a, b) => a * 31 + b, 7));
  const inputs = shapes.map((s) => rng.normal(new Float32Array(s.reduce((a, b) => a * b, 1)), 1));
  let w: Float32Array | null = null;
  const run = async (backend: "cpu" | "wasm") => {
    await initBackend(backend);
    const xs = inputs.map((v, i) => tf.tensor(v, shapes[i]));
    const prof = await tf.profile(() => f(...xs));
    assert.equal(prof.kernelNames.includes(kernel), backend === "wasm", `${what}: ${kernel} on ${backend}`);
    const y = prof.result as tf.Tensor;
    w ??= new Rng(99).normal(new Float32Array(y.size), 1);
    const wt = tf.tensor(w, y.shape);
    const outs = [y, ...tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), wt)))(xs)];
    const vals = outs.map((t) => Float32Array.from(t.dataSync()));
    tf.dispose([...outs, ...xs, wt]);
    return vals;
  };
  const ref = await run("cpu"), got = await run("wasm");
  for (let i = 0; i < ref.length; i++) {
    let worst = 0, scale = 0;
    for (let j = 0; j < ref[i].length; j++) {
      worst = Math.max(worst, Math.abs(got[i][j] - ref[i][j]));
      scale = Math.max(scale, Math.abs(ref[i][j]));
    }
    assert.ok(scale > 0, `${what} output ${i} is all zero`);
    assert.ok(worst <= 2e-6 * Math.max(scale, 1), `${what} ${i ? `gradient ${i - 1}` : "value"}: ${worst} (${scale})`);
  }
}

Deno.test("wasm SIMD RMSNorm and SwiGLU match the composite ops on cpu, values and gradients, odd shapes", async () => {
  for (const [n, d] of [[1, 1], [7, 5], [3, 33], [130, 128]]) {
    await compareOnWasm(`rmsnorm [${n},${d}]`, "FlRmsNorm", [[n, d], [d]], (x, g) => rmsnorm(x, g, 1e-5));
    await compareOnWasm(`rmsnorm no gain [${n},${d}]`, "FlRmsNorm", [[n, d]], (x) => rmsnorm(x, null, 1e-5));
  }
  await compareOnWasm("rmsnorm [2,3,9]", "FlRmsNorm", [[2, 3, 9], [9]], (x, g) => rmsnorm(x, g, 1e-5));
  for (const [n, h] of [[1, 1], [5, 7], [9, 33], [64, 384]]) {
    await compareOnWasm(`swiglu [${n},${2 * h}]`, "FlSwiglu", [[n, 2 * h]], (ab) => swiglu(ab as tf.Tensor2D));
  }
});

Deno.test("wasm SIMD cross-entropy (value and gradient) matches cpu; an out-of-range target row counts 0", async () => {
  for (const [n, v] of [[1, 2], [7, 5], [130, 256]]) { // (the composite's oneHot needs depth >= 2)
    const rng = new Rng(n * v), logits = rng.normal(new Float32Array(n * v), 2);
    const ids = Int32Array.from({ length: n }, (_, i) => (i === 3 ? v : (i * 5) % v)); // row 3: out of range
    const run = async (backend: "cpu" | "wasm") => {
      await initBackend(backend);
      const x = tf.tensor2d(logits, [n, v]), t = tf.tensor1d(ids, "int32");
      const prof = await tf.profile(() => crossEntropy(x, t));
      assert.equal(prof.kernelNames.includes("FlCrossEntropy"), backend === "wasm");
      const g = tf.grad((a: tf.Tensor) => tf.mul(crossEntropy(a as tf.Tensor2D, t), 3))(x);
      const out = [Float32Array.from((prof.result as tf.Tensor).dataSync()), Float32Array.from(g.dataSync())];
      tf.dispose([x, t, g, prof.result as tf.Tensor]);
      return out;
    };
    const ref = await run("cpu"), got = await run("wasm");
    for (const i of [0, 1]) {
      for (let j = 0; j < ref[i].length; j++) {
        assert.ok(Math.abs(got[i][j] - ref[i][j]) <= 2e-6 * Math.max(1, Math.abs(ref[i][j])), `[${n},${v}] ${i} ${j}`);
      }
    }
  }
});

Deno.test("wasm SIMD AdamW equals the composite ops on cpu bit for bit (with and without decay)", async () => {
  const rng = new Rng(5), n = 1037;
  const [p, m, g] = [1, 2, 3].map(() => rng.normal(new Float32Array(n), 1));
  const v = rng.normal(new Float32Array(n), 1).map(Math.abs);
  for (const weightDecay of [0.1, 0]) {
    const s = { beta1: 0.9, beta2: 0.95, eps: 1e-8, lr: 3e-3, weightDecay, bc1: 1 - 0.9 ** 3, bc2: 1 - 0.95 ** 3 };
    const run = async (backend: "cpu" | "wasm") => {
      await initBackend(backend);
      const ts = [p, m, v, g].map((a) => tf.tensor1d(a));
      const prof = await tf.profile(() => {
        const r = adamwUpdate(ts[0], ts[1], ts[2], ts[3], s);
        return [r.p, r.m, r.v];
      });
      assert.equal(prof.kernelNames.includes("FlAdamW"), backend === "wasm");
      const outs = (prof.result as tf.Tensor[]).map((t) => Float32Array.from(t.dataSync()));
      tf.dispose([...ts, ...(prof.result as tf.Tensor[])]);
      return outs;
    };
    const ref = await run("cpu"), got = await run("wasm");
    for (const i of [0, 1, 2]) assert.deepEqual(got[i], ref[i], `decay ${weightDecay} output ${i}`);
  }
});
