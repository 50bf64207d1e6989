import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../backends/mod.ts";
import type { ModelConfig } from "../../core/config.ts";
import { Rng } from "../../util/rng.ts";
import { balanceLoss } from "../moe.ts";
import { assertClose, randomParams, range, recordingCtx, swigluRef, TINY_MODEL, tokenRows } from "../moe_test_util.ts";
import { finermoeRouted, finermoeShape, variant } from "./finermoe.ts";
import { finermoeRouting } from "../finermoe_routing.ts";
import { variant as dense } from "./dense.ts";

const BASE: ModelConfig = TINY_MODEL;
const cfgWith = (ffn: Record<string, unknown>): ModelConfig => ({ ...BASE, ffn: { kind: "finermoe", ...ffn } });
const d = 8, H = 24;
const FINE = { g_i: 3, r_i: 2, g_o: 2, r_o: 2, t_i: 2 }; // N = 24 experts, 4 active, He = 8, he = 4

Deno.test("finermoe validate names the field, the value and the allowed range", () => {
  const msgs = variant.validate(
    cfgWith({ g_i: 5, g_o: 3, t_i: 7, combine: "max", shared_expert: 1, balance_coef: 11, x: 0 }),
  );
  const want = [
    /model\.ffn\.x is not an option of ffn kind "finermoe"/,
    /model\.ffn\.g_i = 5 must divide model\.d_ff = 24/,
    /model\.ffn\.g_o = 3 must divide model\.d_model = 8/,
    /model\.ffn\.t_i = 7 must be in \[1, g_i·r_i = 5\]/,
    /model\.ffn\.combine = "max" is not one of: joint_softmax, slice_softmax, raw/,
    /model\.ffn\.shared_expert = 1 is not one of: gated, plain, none/,
    /model\.ffn\.balance_coef = 11 must be a number in \[0, 10\]/,
  ];
  for (const w of want) assert.ok(msgs.some((m) => w.test(m)), `${w} in ${msgs.join(" | ")}`);
  assert.equal(msgs.length, want.length);
  assert.match(variant.validate(cfgWith({ r_i: 0 }))[0], /model\.ffn\.r_i = 0 must be an integer in \[1, 4096\]/);
  assert.deepEqual(variant.validate(cfgWith({})), []);
  assert.deepEqual(variant.validate(cfgWith(FINE)), []);
});

Deno.test("finermoe sizes: the paper's parameter formulas, and its 1.5B main setting (5.64B total, 1.85B active)", () => {
  const cfg = cfgWith(FINE), s = finermoeShape(cfg), c = variant.sparseCost(cfg);
  assert.deepEqual([s.he_inter, s.he_out, s.experts, s.active], [8, 4, 24, 4]);
  const specs = variant.params(cfg);
  assert.deepEqual(specs.map((p) => [p.name, p.shape]), [
    ["router", [d, 24]],
    ["w13", [d, 2 * 24 * 8]],
    ["w2", [24 * 8, 4]],
    ["shared.w13", [d, 2 * H]],
    ["shared.w2", [H, d]],
    ["shared.gate", [d, 1]],
  ]);
  assert.equal(variant.paramCount(cfg), specs.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0));
  // Routed params R_O·R_I·(2·G_O + 1)·h·H; active routed T_I·(2·G_O + 1)·h·H / G_I (finermoe.md §2).
  assert.equal(c.experts * c.expert_params, 2 * 2 * 5 * d * H);
  assert.equal(s.active * c.expert_params, (2 * 5 * d * H) / 3);
  assert.equal(variant.flopsPerToken(cfg), 2 * (c.fixed_params + s.active * c.expert_params));
  assert.equal(variant.params(cfgWith({ ...FINE, shared_expert: "none" })).length, 3);
  // Qwen2.5-1.5B (h 1536, H 8960, 28 layers, vocab 151936, GQA 12/2 heads of 128 with q/k/v biases, untied head)
  // with G_I=32, R_I=1, G_O=2, R_O=2, T_I=1: the paper reports 5.64B total, 1.85B active.
  const big = {
    ...BASE,
    d_model: 1536,
    d_ff: 8960,
    ffn: { kind: "finermoe" as const, g_i: 32, r_i: 1, g_o: 2, r_o: 2, t_i: 1 },
  };
  const bc = variant.sparseCost(big), L = 28, h = 1536, kv = 256;
  const nonFfn = 2 * 151936 * h + L * (2 * h * h + 2 * h * kv + h + 2 * kv + 2 * h) + h;
  const total = nonFfn + L * (bc.fixed_params + bc.experts * bc.expert_params);
  const active = nonFfn + L * (bc.fixed_params + bc.active_experts! * bc.expert_params);
  assert.ok(Math.abs(total / 5.64e9 - 1) < 0.005, `total ${total}`);
  assert.ok(Math.abs(active / 1.85e9 - 1) < 0.01, `active ${active}`);
});

/** Float64 reference of the routed part + shared expert, expert by expert (Algorithm 1, combine options). */
function reference(cfg: ModelConfig, xs: Float32Array, N: number, p: Record<string, Float32Array>): number[] {
  const s = finermoeShape(cfg), E = s.experts, He = s.he_inter, he = s.he_out, per = E / s.g_o;
  return tokenRows(xs, N, d).flatMap((x) => {
    const z = range(0, E).map((k) => range(0, d).reduce((a, j) => a + x[j] * p.router[j * E + k], 0));
    const sel: number[] = [];
    for (let i = 0; i < s.g_o; i++) {
      const groups = range(0, s.r_o).map((r) => range((i * s.r_o + r) * s.group, s.group));
      const score = groups.map((g) => g.reduce((a, k) => a + z[k], 0));
      const best = groups[score.indexOf(Math.max(...score))];
      sel.push(...[...best].sort((a, b) => z[b] - z[a] || a - b).slice(0, s.t_i));
    }
    const weight = new Map<number, number>();
    const softmax = (ks: number[]) => {
      const m = Math.max(...ks.map((k) => z[k])),
        ex = ks.map((k) => Math.exp(z[k] - m)),
        sum = ex.reduce((a, b) => a + b);
      ks.forEach((k, j) => weight.set(k, ex[j] / sum));
    };
    if (s.combine === "joint_softmax") softmax(sel);
    else if (s.combine === "raw") sel.forEach((k) => weight.set(k, z[k]));
    else for (let i = 0; i < s.g_o; i++) softmax(sel.filter((k) => Math.floor(k / per) === i));
    const y = new Array(d).fill(0);
    for (const k of sel) {
      const i = Math.floor(k / per);
      const o = swigluRef(
        x,
        p.w13,
        2 * E * He,
        range(k * He, He),
        range(E * He + k * He, He),
        p.w2,
        range(k * He, He),
        he,
      );
      o.forEach((v, j) => (y[i * he + j] += weight.get(k)! * v));
    }
    if (s.shared_expert !== "none") {
      const o = swigluRef(x, p["shared.w13"], 2 * H, range(0, H), range(H, H), p["shared.w2"], range(0, H), d);
      const gate = s.shared_expert === "gated"
        ? 1 / (1 + Math.exp(-range(0, d).reduce((a, j) => a + x[j] * p["shared.gate"][j], 0)))
        : 1;
      o.forEach((v, j) => (y[j] += gate * v));
    }
    return y;
  });
}

Deno.test("finermoe: masked, sparse and an explicit per-expert loop (float64) agree on a random batch", async () => {
  await initBackend("cpu");
  const N = 11, r = new Rng(4);
  const cases = [
    FINE,
    { ...FINE, combine: "slice_softmax", shared_expert: "plain" },
    { ...FINE, combine: "raw", shared_expert: "none", t_i: 1 },
    { g_i: 4, r_i: 1, g_o: 4, r_o: 3, t_i: 1 },
    {}, // defaults: g_i 8, r_i 1, g_o 2, r_o 2, t_i 1
  ];
  for (const ffn of cases) {
    const cfg = cfgWith(ffn), s = finermoeShape(cfg);
    const p = randomParams(variant, cfg, 17), xs = r.normal(new Float32Array(N * d), 1), x = tf.tensor2d(xs, [N, d]);
    const pv: Record<string, Float32Array> = {};
    for (const [k, t] of Object.entries(p)) pv[k] = t.dataSync() as Float32Array;
    const want = reference(cfg, xs, N, pv);
    const what = JSON.stringify(ffn);
    assertClose(await variant.apply(x, p, recordingCtx(cfg, true)).data(), want, 2e-5, `train (masked) ${what}`);
    assertClose(await variant.apply(x, p, recordingCtx(cfg, false)).data(), want, 2e-5, `inference (sparse) ${what}`);
    // Routing: exactly T_I experts in one group of every output slice.
    const { coef } = finermoeRouting(x, p.router, s), cv = await coef.data(), per = s.experts / s.g_o;
    for (let t = 0; t < N; t++) {
      for (let i = 0; i < s.g_o; i++) {
        const chosen = range(i * per, per).filter((k) => cv[t * s.experts + k] !== 0);
        assert.equal(chosen.length, s.t_i, `token ${t} slice ${i}`);
        assert.equal(new Set(chosen.map((k) => Math.floor(k / s.group))).size, 1, "one group per slice");
      }
    }
    const masked = await finermoeRouted(x, p, coef, s, "masked").data();
    assertClose(await finermoeRouted(x, p, coef, s, "sparse").data(), masked, 1e-5, `routed sparse vs masked ${what}`);
  }
});

Deno.test("finermoe: with every granularity 1 and no shared expert, top-1 of the upcycled layer equals the dense FFN", async () => {
  await initBackend("cpu");
  const r = new Rng(9), N = 7;
  const w13 = r.normal(new Float32Array(d * 2 * H), 0.5), w2 = r.normal(new Float32Array(H * d), 0.5);
  const x = tf.tensor2d(r.normal(new Float32Array(N * d), 1), [N, d]);
  const pd = { w13: tf.tensor2d(w13, [d, 2 * H]), w2: tf.tensor2d(w2, [H, d]) };
  const want = await dense.apply(x, pd, recordingCtx(BASE, false)).data();
  const cfg = cfgWith({ g_i: 1, r_i: 1, g_o: 1, r_o: 1, t_i: 1, shared_expert: "none" });
  const up = variant.upcycleFromDense(cfg, { w13, w2, d_model: d, d_ff: H });
  assert.deepEqual(Array.from(up.w13), Array.from(w13)); // one expert = the dense FFN, coeff G_I = 1
  assert.deepEqual(Array.from(up.w2), Array.from(w2));
  const p = { ...pd, router: tf.tensor2d(r.normal(new Float32Array(d), 1), [d, 1]) };
  for (const training of [true, false]) {
    const y = await variant.apply(x, p, recordingCtx(cfg, training)).data();
    assertClose(y, want, 1e-6, `training=${training}`);
  }
});

Deno.test("finermoe upcycling: experts are dense slices and replicas (Eq. 9-10), coeff G_I without shared expert", async () => {
  await initBackend("cpu");
  const r = new Rng(10), w13 = r.normal(new Float32Array(d * 2 * H), 1), w2 = r.normal(new Float32Array(H * d), 1);
  for (const shared of ["gated", "none"] as const) {
    const cfg = cfgWith({ ...FINE, shared_expert: shared }), s = finermoeShape(cfg);
    const up = variant.upcycleFromDense(cfg, { w13, w2, d_model: d, d_ff: H });
    const E = s.experts, He = s.he_inter, he = s.he_out, coeff = shared === "none" ? s.g_i : 1;
    for (let k = 0; k < E; k++) {
      const i = Math.floor(k / (s.r_o * s.group)), src = (k % s.group) % s.g_i;
      for (let row = 0; row < d; row++) {
        for (let j = 0; j < He; j++) {
          assert.equal(up.w13[row * 2 * E * He + k * He + j], w13[row * 2 * H + src * He + j]);
          assert.equal(up.w13[row * 2 * E * He + E * He + k * He + j], w13[row * 2 * H + H + src * He + j]);
        }
      }
      for (let j = 0; j < He; j++) {
        for (let c = 0; c < he; c++) {
          assert.equal(up.w2[(k * He + j) * he + c], Math.fround(coeff * w2[(src * He + j) * d + i * he + c]));
        }
      }
    }
    if (shared === "gated") {
      assert.deepEqual(Object.keys(up).sort(), ["shared.w13", "shared.w2", "w13", "w2"]);
      assert.deepEqual(Array.from(up["shared.w13"]), Array.from(w13));
    } else assert.deepEqual(Object.keys(up).sort(), ["w13", "w2"]);
  }
  assert.throws(
    () => variant.upcycleFromDense(cfgWith(FINE), { w13, w2: w2.slice(0, 8), d_model: d, d_ff: 1 }),
    /dense FFN is \[8, 1\], the model needs \[8, 24\]/,
  );
});

Deno.test("finermoe: sequence-level balance loss per sequence; unselected experts get no gradient", async () => {
  await initBackend("cpu");
  const cfg = cfgWith({ ...FINE, balance_coef: 0.5 }), s = finermoeShape(cfg), T = 4, N = 3 * T;
  const p0 = randomParams(variant, cfg, 23, 0.4),
    x = tf.tensor2d(new Rng(3).normal(new Float32Array(N * d), 1), [N, d]);
  const ctx = { ...recordingCtx(cfg, true), seqLen: T };
  const vars: Record<string, tf.Variable> = {};
  for (const [k, t] of Object.entries(p0)) vars[k] = tf.variable(t);
  let aux: tf.Scalar | null = null;
  const { grads } = tf.variableGrads(() => {
    const y = variant.apply(x, vars, ctx);
    aux = tf.keep(ctx.aux[0]);
    return tf.add(tf.sum(tf.mul(y, tf.range(0, N * d).reshape([N, d]))), aux) as tf.Scalar;
  });
  const { probs, mask, coef } = finermoeRouting(x, vars.router, s);
  const lb = (await balanceLoss(probs, mask, s.active, T).data())[0];
  assert.notEqual(lb, (await balanceLoss(probs, mask, s.active).data())[0]); // per sequence, not per batch
  assert.ok(Math.abs((await aux!.data())[0] - 0.5 * lb) < 1e-6);
  const cv = await coef.data(), E = s.experts, He = s.he_inter;
  const unused = range(0, E).filter((k) => range(0, N).every((t) => cv[t * E + k] === 0));
  assert.ok(unused.length > 0);
  const g13 = await grads[vars.w13.name].data(), g2 = await grads[vars.w2.name].data();
  for (const k of unused) {
    for (let row = 0; row < d; row++) {
      for (let j = 0; j < He; j++) {
        assert.equal(g13[row * 2 * E * He + k * He + j], 0);
        assert.equal(g13[row * 2 * E * He + E * He + k * He + j], 0);
      }
    }
    for (let j = 0; j < He * s.he_out; j++) assert.equal(g2[k * He * s.he_out + j], 0);
  }
  assert.ok(g13.some((v) => v !== 0) && (await grads[vars.router.name].data()).some((v) => v !== 0));
  assert.ok((await grads[vars["shared.gate"].name].data()).some((v) => v !== 0));
});

Deno.test("finermoe routers = separate: a second router picks each slice's group and scales it by its probability", async () => {
  await initBackend("cpu");
  assert.match(variant.validate(cfgWith({ routers: "two" }))[0], /model\.ffn\.routers = "two" is not one of/);
  const cfg = cfgWith({ ...FINE, routers: "separate" }), s = finermoeShape(cfg), N = 9;
  const single = cfgWith(FINE);
  const extra = variant.params(cfg).filter((sp) => !variant.params(single).some((q) => q.name === sp.name));
  assert.deepEqual(extra.map((sp) => [sp.name, sp.shape, sp.decay]), [["concat_router", [d, 4], false]]);
  assert.equal(variant.paramCount(cfg), variant.paramCount(single) + d * 4);
  const p0 = randomParams(variant, cfg, 41, 0.6),
    x = tf.tensor2d(new Rng(6).normal(new Float32Array(N * d), 1), [N, d]);
  const vars: Record<string, tf.Variable> = {};
  for (const [k, t] of Object.entries(p0)) vars[k] = tf.variable(t);
  const { coef, mask } = finermoeRouting(x, vars.router, s, vars.concat_router);
  const base = finermoeRouting(x, vars.router, finermoeShape(single));
  const [cv, mv, zc, z] = await Promise.all([
    coef.data(),
    mask.data(),
    tf.matMul(x, vars.concat_router).data(),
    tf.matMul(x, vars.router).data(),
  ]);
  const E = s.experts, per = E / s.g_o, G = s.group;
  let differs = false;
  for (let t = 0; t < N; t++) {
    for (let i = 0; i < s.g_o; i++) {
      const l = [0, 1].map((r) => zc[t * 4 + i * 2 + r]), pick = l[1] > l[0] ? 1 : 0;
      const prob = Math.exp(l[pick]) / (Math.exp(l[0]) + Math.exp(l[1]));
      const on = range(i * per, per).filter((k) => mv[t * E + k] === 1);
      assert.equal(on.length, s.t_i, `T_I experts in slice ${i}`);
      assert.ok(on.every((k) => Math.floor((k - i * per) / G) === pick), "all in the concat router's group");
      // The single router's choice is the group with the larger sum of logits; sometimes it differs.
      const sums = [0, 1].map((r) => range(i * per + r * G, G).reduce((a, k) => a + z[t * E + k], 0));
      if ((sums[1] > sums[0] ? 1 : 0) !== pick) differs = true;
      // Weights: the joint softmax of the selected logits, times the picked group's probability.
      const sel = range(0, E).filter((k) => mv[t * E + k] === 1);
      const den = sel.reduce((a, k) => a + Math.exp(z[t * E + k]), 0);
      for (const k of on) assertClose([cv[t * E + k]], [prob * Math.exp(z[t * E + k]) / den], 1e-5, `coef ${t},${k}`);
    }
  }
  assert.ok(differs, "the separate router picks a different group than the summed logits somewhere");
  // It learns: the concat router gets gradient through the weights.
  const { grads } = tf.variableGrads(() => tf.sum(tf.square(variant.apply(x, vars, recordingCtx(cfg, true)))));
  assert.ok((await grads[vars.concat_router.name].data()).some((v) => v !== 0));
  tf.dispose([x, coef, mask, base.coef, base.mask, base.probs, ...Object.values(grads), ...Object.values(vars)]);
});
