import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/mod.ts";
import { Rng } from "../util/rng.ts";
import {
  balanceLoss,
  expertRunner,
  maskedMixture,
  maskedSoftmax,
  noGrad,
  sparseMixture,
  stopGradient,
  topkMask,
} from "./moe.ts";

Deno.test("topkMask picks the k largest per row and has no gradient; maskedSoftmax is zero off the mask", async () => {
  await initBackend("cpu");
  const l = tf.variable(tf.tensor2d([[0.1, 0.5, -0.2, 0.3], [1, 0, 0, 2]]));
  const { value, grads } = tf.variableGrads(() => {
    const m = topkMask(l as unknown as tf.Tensor2D, 2);
    const c = maskedSoftmax(l, m);
    return tf.sum(tf.mul(c, tf.tensor2d([[1, 2, 3, 4], [5, 6, 7, 8]]))) as tf.Scalar;
  });
  const m = topkMask(l as unknown as tf.Tensor2D, 2);
  assert.deepEqual(Array.from(await m.data()), [0, 1, 0, 1, 1, 0, 0, 1]);
  const c = await maskedSoftmax(l, m).data();
  const e = Math.exp(0.5 - 0.3);
  assert.ok(Math.abs(c[1] - e / (e + 1)) < 1e-6 && c[0] === 0 && c[2] === 0);
  // d/dl of Σ c·v over the selected logits only: c_i (v_i - Σ c v); unselected logits get 0.
  const g = await grads[l.name].data();
  assert.equal(g[0], 0);
  assert.equal(g[2], 0);
  assert.equal(g[5], 0);
  assert.ok(Math.abs(g[1] - (e / (e + 1)) * (2 - (2 * e + 4) / (e + 1))) < 1e-5);
  assert.ok(Number.isFinite(value.dataSync()[0]));
  tf.dispose([l, m, value, ...Object.values(grads)]);
});

Deno.test("noGrad and stopGradient: forward value unchanged, zero gradient", async () => {
  await initBackend("cpu");
  const x = tf.variable(tf.tensor1d([1, -2, 3]));
  const { grads } = tf.variableGrads(() => {
    const s = stopGradient(x);
    const m = noGrad([x], (v) => tf.cast(tf.greater(v, 0), "float32"));
    return tf.sum(tf.add(tf.mul(s, x), m)) as tf.Scalar;
  });
  // d/dx Σ sg(x)·x = x (the stopped factor is a constant).
  assert.deepEqual(Array.from(await grads[x.name].data()), [1, -2, 3]);
  tf.dispose([x, ...Object.values(grads)]);
});

Deno.test("balanceLoss on a hand-made routing: batch level 1.575, sequence level 2.0, uniform 1", async () => {
  await initBackend("cpu");
  const probs = tf.tensor2d([
    [0.7, 0.1, 0.1, 0.1],
    [0.6, 0.2, 0.1, 0.1],
    [0.1, 0.8, 0.05, 0.05],
    [0.25, 0.25, 0.25, 0.25],
  ]);
  const mask = tf.tensor2d([[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0]]);
  // counts [3,1,0,0], P = [0.4125, 0.3375, 0.125, 0.125]: E/(kN) Σ count·P = 3·0.4125 + 0.3375.
  assert.ok(Math.abs((await balanceLoss(probs, mask, 1).data())[0] - 1.575) < 1e-6);
  // Sequences of 2: A f=[4,0,0,0], P=[0.65,..] -> 2.6; B f=[2,2,0,0], P=[0.175,0.525,..] -> 1.4; mean 2.0.
  assert.ok(Math.abs((await balanceLoss(probs, mask, 1, 2).data())[0] - 2.0) < 1e-6);
  const uni = tf.fill([4, 4], 0.25) as tf.Tensor2D;
  const m2 = tf.tensor2d([[1, 1, 0, 0], [0, 0, 1, 1], [1, 1, 0, 0], [0, 0, 1, 1]]);
  assert.ok(Math.abs((await balanceLoss(uni, m2, 2).data())[0] - 1) < 1e-6);
  assert.throws(() => balanceLoss(probs, mask, 1, 3), /cannot be grouped/);
  tf.dispose([probs, mask, uni, m2]);
});

for (const backend of ["cpu", "wasm"] as const) {
  Deno.test(`sparseMixture equals maskedMixture (values and gradients), tokens with no expert (${backend})`, async () => {
    await initBackend(backend);
    const N = 7, d = 5, E = 4, w = 3, r = new Rng(5);
    const rand = (n: number, s = 0.5) => r.normal(new Float32Array(n), s);
    const x = tf.tensor2d(rand(N * d, 1), [N, d]);
    const w13 = tf.variable(tf.tensor2d(rand(d * 2 * E * w), [d, 2 * E * w]));
    const w2 = tf.variable(tf.tensor2d(rand(E * w * d), [E * w, d]));
    const c = rand(N * E, 1);
    for (let t = 0; t < N; t++) for (let e = 0; e < E; e++) if ((t + e) % 3 !== 0 || t === 6) c[t * E + e] = 0;
    const coefV = tf.variable(tf.tensor2d(c, [N, E]));
    const run = (sparse: boolean) =>
      tf.variableGrads(() => {
        const coef = coefV as unknown as tf.Tensor2D;
        const y = sparse
          ? sparseMixture(x, coef, c, (e, xs) => {
            const a = tf.matMul(xs, tf.slice(w13, [0, e * w], [d, w]));
            const b = tf.matMul(xs, tf.slice(w13, [0, E * w + e * w], [d, w]));
            return tf.matMul(tf.mul(tf.mul(a, tf.sigmoid(a)), b), tf.slice(w2, [e * w, 0], [w, d]));
          }, { outDim: d })
          : maskedMixture(x, w13, w2, coef);
        return tf.sum(tf.mul(y, tf.range(0, N * d).reshape([N, d]))) as tf.Scalar;
      });
    const a = run(false), b = run(true);
    const close = (u: ArrayLike<number>, v: ArrayLike<number>, what: string) => {
      for (let i = 0; i < u.length; i++) {
        assert.ok(Math.abs(u[i] - v[i]) < 1e-4 * (1 + Math.abs(u[i])), `${what}[${i}]`);
      }
    };
    close(await a.value.data(), await b.value.data(), "value");
    for (const v of [w13, w2]) close(await a.grads[v.name].data(), await b.grads[v.name].data(), v.name);
    // dL/dcoef agrees where an expert ran; where coef = 0 the sparse form never ran the expert, so its
    // gradient there is 0 while the masked one is the expert's output (routers have zero derivative
    // there, see maskedSoftmax, so routing gradients agree; DSMoE's STE needs it and trains masked).
    const ga = await a.grads[coefV.name].data(), gb = await b.grads[coefV.name].data();
    for (let i = 0; i < c.length; i++) {
      if (c[i] !== 0) assert.ok(Math.abs(ga[i] - gb[i]) < 1e-4 * (1 + Math.abs(ga[i])), `coef grad ${i}`);
      else assert.equal(gb[i], 0);
    }
    assert.ok(c.some((v, i) => v === 0 && ga[i] !== 0)); // the masked form does see unselected experts
    // Row 6 has no expert: output exactly 0 in the sparse form.
    const y = sparseMixture(x, coefV as unknown as tf.Tensor2D, c, (_, xs) => tf.ones([xs.shape[0], d]), { outDim: d });
    assert.deepEqual(Array.from((await y.data()).slice(6 * d)), [0, 0, 0, 0, 0]);
    tf.dispose([x, w13, w2, coefV, y, a.value, b.value, ...Object.values(a.grads), ...Object.values(b.grads)]);
  });
}

Deno.test("sparse mixture: split weights and sliced weights give bit-identical values and gradients, close to masked", async () => {
  for (const backend of ["cpu", "wasm"] as const) {
    await initBackend(backend);
    const N = 9, d = 6, E = 5, w = 3, rng = new Rng(21);
    const t = (shape: number[]) => tf.tensor(rng.normal(new Float32Array(shape.reduce((a, b) => a * b)), 1), shape);
    const x = t([N, d]) as tf.Tensor2D, w13 = t([d, 2 * E * w]), w2 = t([E * w, d]);
    // Two experts per token, one expert (3) never used: its gradients must be exact zeros.
    const c = new Float32Array(N * E);
    for (let i = 0; i < N; i++) {
      for (const e of [i % 3, (i + 1) % 3 === 0 ? 4 : (i + 1) % 3]) c[i * E + e] = 0.1 + i / 10;
    }
    const coef = tf.tensor2d(c, [N, E]), values = coef.dataSync();
    const lossOf =
      (form: "slice" | "split" | "masked") => (xx: tf.Tensor, a: tf.Tensor, b: tf.Tensor, k: tf.Tensor) => {
        const y = form === "masked" ? maskedMixture(xx as tf.Tensor2D, a, b, k as tf.Tensor2D) : sparseMixture(
          xx as tf.Tensor2D,
          k as tf.Tensor2D,
          values,
          expertRunner(a, b, E, { split: form === "split" }),
          {
            outDim: d,
          },
        );
        return tf.sum(tf.mul(y, tf.range(0, N * d).reshape([N, d])));
      };
    const run = async (form: "slice" | "split" | "masked") => {
      const gs = tf.grads(lossOf(form))([x, w13, w2, coef]);
      const out = [];
      for (const g of gs) out.push(Array.from(await g.data()));
      tf.dispose(gs);
      return out;
    };
    const [sl, sp, ma] = [await run("slice"), await run("split"), await run("masked")];
    assert.deepEqual(sp, sl, `${backend}: split and slice differ`);
    for (const [i, name] of ["x", "w13", "w2", "coef"].entries()) {
      // d coef: the sparse form differentiates the selected entries only (callers' coef is 0 elsewhere by a mask).
      const keep = (j: number) => i !== 3 || c[j] !== 0;
      const worst = Math.max(...sp[i].map((v, j) => keep(j) ? Math.abs(v - ma[i][j]) : 0));
      const scale = Math.max(...ma[i].map(Math.abs));
      assert.ok(worst <= 1e-5 * scale, `${backend} d${name}: sparse vs masked ${worst} (scale ${scale})`);
    }
    const g13 = sp[1];
    for (let k = 0; k < d; k++) for (let j = 0; j < w; j++) assert.equal(g13[k * 2 * E * w + 3 * w + j], 0);
    tf.dispose([x, w13, w2, coef]);
  }
});
