import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../backends/mod.ts";
import type { ModelConfig } from "../../core/config.ts";
import { Rng } from "../../util/rng.ts";
import { maskedMixture } from "../moe.ts";
import {
  assertClose,
  expertRef,
  randomParams,
  range,
  recordingCtx,
  swigluRef,
  TINY_MODEL,
  tokenRows,
  weightedSum,
} from "../moe_test_util.ts";
import { dsmoeForward, dsmoeGates, dsmoeShape, partitionDense, variant } from "./dsmoe.ts";
import { variant as dense } from "./dense.ts";

const BASE: ModelConfig = TINY_MODEL;
const cfgWith = (ffn: Record<string, unknown>): ModelConfig => ({ ...BASE, ffn: { kind: "dsmoe", ...ffn } });
const d = 8, h = 24;

Deno.test("dsmoe validate names the field, the value and the allowed range", () => {
  const msgs = variant.validate(
    cfgWith({ experts: 5, tau: 1, ste: "yes", lambda: -1, gate_init_std: 0, gate_bias: 11, bar: 2 }),
  );
  const want = [
    /model\.ffn\.bar is not an option of ffn kind "dsmoe"/,
    /model\.ffn\.experts = 5 must divide model\.d_ff = 24/,
    /model\.ffn\.tau = 1 must be a number in \(0, 1\)/,
    /model\.ffn\.lambda = -1 must be a number in \[0, 100\]/,
    /model\.ffn\.ste = "yes" must be true or false/,
    /model\.ffn\.gate_init_std = 0 must be a number in \(0, 1\] or null/,
    /model\.ffn\.gate_bias = 11 must be a number in \[-10, 10\] or null/,
  ];
  for (const w of want) assert.ok(msgs.some((m) => w.test(m)), `${w} in ${msgs.join(" | ")}`);
  assert.equal(msgs.length, want.length);
  assert.deepEqual(variant.validate(cfgWith({})), []);
});

Deno.test("dsmoe params keep the dense layout; counts and FLOPs (upper bound: all blocks)", () => {
  const cfg = cfgWith({ experts: 4, gate_init_std: 0.05 });
  const specs = variant.params(cfg);
  assert.deepEqual(specs.map((s) => [s.name, s.shape]), [["w13", [d, 2 * h]], ["w2", [h, d]], ["gate", [d, 4]]]);
  assert.deepEqual(specs.slice(0, 2), dense.params(BASE)); // same names, shapes and init as dense
  assert.equal(specs[2].std, 0.05);
  assert.equal(variant.paramCount(cfg), 3 * d * h + d * 4);
  assert.equal(variant.flopsPerToken(cfg), 6 * d * h + 2 * d * 4);
  assert.equal(variant.sparseCost(cfg).active_experts, null);
  const biased = cfgWith({ experts: 4, gate_bias: 2 });
  assert.deepEqual(variant.params(biased)[3], { name: "gate_bias", shape: [4], init: "zeros", decay: false });
  assert.equal(variant.paramCount(biased), 3 * d * h + d * 4 + 4);
});

Deno.test("dsmoe blocks: contiguous partition reconstructs the dense FFN exactly, and the blocks sum to it", async () => {
  await initBackend("cpu");
  const r = new Rng(3), N = 5, n = 4, B = h / n;
  const w13 = r.normal(new Float32Array(d * 2 * h), 0.5), w2 = r.normal(new Float32Array(h * d), 0.5);
  const blocks = partitionDense({ w13, w2, d_model: d, d_ff: h }, n);
  // Reassembling the blocks gives back the dense matrices bit for bit.
  for (let k = 0; k < d; k++) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < B; j++) {
        assert.equal(blocks[i].w13[k * 2 * B + j], w13[k * 2 * h + i * B + j]);
        assert.equal(blocks[i].w13[k * 2 * B + B + j], w13[k * 2 * h + h + i * B + j]);
      }
    }
  }
  assert.deepEqual(blocks.flatMap((b) => Array.from(b.w2)), Array.from(w2));
  // Σ_i FFN_i(x) = FFN(x) in float64 (same products, different grouping of the sum).
  const xs = r.normal(new Float32Array(N * d), 1);
  for (let t = 0; t < N; t++) {
    const x = xs.subarray(t * d, (t + 1) * d);
    const full = swigluRef(x, w13, 2 * h, range(0, h), range(h, h), w2, range(0, h), d);
    const sum = new Array(d).fill(0);
    for (const b of blocks) {
      swigluRef(x, b.w13, 2 * B, range(0, B), range(B, B), b.w2, range(0, B), d).forEach((v, c) => (sum[c] += v));
    }
    assertClose(sum, full, 1e-12, `token ${t}`);
  }
  // The masked form with every multiplier 1 IS the dense FFN (bit for bit on this backend).
  const x = tf.tensor2d(xs, [N, d]), pw = { w13: tf.tensor2d(w13, [d, 2 * h]), w2: tf.tensor2d(w2, [h, d]) };
  const ones = await maskedMixture(x, pw.w13, pw.w2, tf.ones([N, n])).data();
  assert.deepEqual(Array.from(ones), Array.from(await dense.apply(x, pw, recordingCtx(BASE, false)).data()));
  // Upcycling keeps w13/w2: a DSMoE from a dense run holds exactly the dense FFN, split in blocks.
  const up = variant.upcycleFromDense(cfgWith({ experts: n }), { w13, w2, d_model: d, d_ff: h });
  assert.deepEqual(Object.keys(up).sort(), ["w13", "w2"]);
  assert.deepEqual(Array.from(up.w13), Array.from(w13));
  assert.deepEqual(Array.from(up.w2), Array.from(w2));
});

/** Float64 reference forward: thresholded sigmoid gates, n/k rescale, Σ over active blocks. */
function reference(cfg: ModelConfig, xs: Float32Array, N: number, p: Record<string, Float32Array>): number[] {
  const s = dsmoeShape(cfg), n = s.experts, B = s.block;
  return tokenRows(xs, N, d).flatMap((x) => {
    const bias = (i: number) => s.gate_bias === null ? 0 : s.gate_bias + p.gate_bias[i];
    const g = range(0, n).map((i) =>
      1 / (1 + Math.exp(-range(0, d).reduce((a, k) => a + x[k] * p.gate[k * n + i], bias(i))))
    );
    const active = range(0, n).filter((i) => g[i] > s.tau), scale = s.rescale ? n / Math.max(active.length, 1) : 1;
    return weightedSum(d, active.map((i) => [g[i] * scale, expertRef(x, p, { e: i, w: B, H: h, d })]));
  });
}

Deno.test("dsmoe forward: training (all blocks) and inference (active blocks only) match a float64 reference", async () => {
  await initBackend("cpu");
  const N = 10, r = new Rng(8);
  const cases = [
    { experts: 4, tau: 0.5 },
    { experts: 6, tau: 0.6, rescale: false },
    { experts: 3, tau: 0.3 },
    { experts: 4, tau: 0.7, gate_bias: 1 },
  ];
  for (const ffn of cases) {
    const cfg = cfgWith(ffn), n = dsmoeShape(cfg).experts;
    const p = randomParams(variant, cfg, 21);
    const xs = r.normal(new Float32Array(N * d), 1);
    xs.fill(0, (N - 1) * d); // last token x = 0: every gate is exactly 0.5, not > τ for τ ≥ 0.5
    const x = tf.tensor2d(xs, [N, d]);
    const pv: Record<string, Float32Array> = {};
    for (const [k, t] of Object.entries(p)) pv[k] = t.dataSync() as Float32Array;
    const want = reference(cfg, xs, N, pv);
    const train = variant.apply(x, p, recordingCtx(cfg, true));
    const infer = variant.apply(x, p, recordingCtx(cfg, false));
    const { coef } = dsmoeGates(x, p, dsmoeShape(cfg));
    assertClose(await train.data(), want, 2e-5, `train ${JSON.stringify(ffn)}`);
    assertClose(await infer.data(), want, 2e-5, `infer ${JSON.stringify(ffn)}`);
    assertClose(await dsmoeForward(x, p, coef, "sparse").data(), want, 2e-5, "sparse");
    const cv = await coef.data();
    const counts = range(0, N).map((t) => range(0, n).filter((i) => cv[t * n + i] !== 0).length);
    assert.ok(new Set(counts).size > 1, `a variable number of active blocks per token: ${counts}`);
    if (dsmoeShape(cfg).tau >= 0.5 && dsmoeShape(cfg).gate_bias === null) assert.equal(counts[N - 1], 0);
    tf.dispose([x, train, infer, coef, ...Object.values(p)]);
  }
});

Deno.test("dsmoe STE: inactive gates get gradient (exactly the STE formula), inactive blocks get none; without STE the gates get none", async () => {
  await initBackend("cpu");
  const N = 6, n = 4, B = h / n, r = new Rng(12);
  const xs = Float32Array.from(r.normal(new Float32Array(N * d), 1), Math.abs); // x > 0
  const R = r.normal(new Float32Array(N * d), 1); // loss = Σ y ⊙ R
  const run = (ffn: Record<string, unknown>) => {
    const cfg = cfgWith({ experts: n, ...ffn });
    const p0 = randomParams(variant, cfg, 5, 0.3);
    const gv = p0.gate.dataSync().slice();
    for (let k = 0; k < d; k++) gv[k * n + 3] = -0.2; // block 3: logit < 0, g < 0.5 for every token
    const vars: Record<string, tf.Variable> = {};
    for (const [k, t] of Object.entries(p0)) vars[k] = tf.variable(k === "gate" ? tf.tensor2d(gv, [d, n]) : t);
    const ctx = recordingCtx(cfg, true);
    const x = tf.tensor2d(xs, [N, d]);
    const { grads } = tf.variableGrads(() => {
      const loss = tf.sum(tf.mul(variant.apply(x, vars, ctx), tf.tensor2d(R, [N, d])));
      return (ctx.aux.length ? tf.add(loss, tf.addN(ctx.aux)) : loss) as tf.Scalar;
    });
    const g = (name: string) => grads[vars[name].name].dataSync();
    const out = { gate: g("gate"), w13: g("w13"), w2: g("w2"), p: vars, active: dsmoeGates(x, vars, dsmoeShape(cfg)) };
    return out;
  };
  const col = (m: ArrayLike<number>, cols: number, c: number) => range(0, d).map((k) => m[k * cols + c]);
  const blockGradsZero = (res: ReturnType<typeof run>) => {
    for (let k = 0; k < d; k++) {
      for (const c of [...range(3 * B, B), ...range(h + 3 * B, B)]) assert.equal(res.w13[k * 2 * h + c], 0);
    }
    for (const row of range(3 * B, B)) for (let c = 0; c < d; c++) assert.equal(res.w2[row * d + c], 0);
    assert.ok(res.w13.some((v) => v !== 0));
  };

  const ste = run({ ste: true, lambda: 0 });
  assert.ok((await ste.active.mask.data()).every((v, i) => i % n !== 3 || v === 0), "block 3 inactive everywhere");
  blockGradsZero(ste);
  // dL/dgate[k][3] = Σ_t x_t[k] · σ'(z_t3) · (n / k_t) · (o_3(x_t) · R_t)   (Eqs. 13-16)
  const pv: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(ste.p)) pv[k] = t.dataSync() as Float32Array;
  const want = new Array(d).fill(0), s = dsmoeShape(cfgWith({ experts: n }));
  const mask = await ste.active.mask.data();
  for (let t = 0; t < N; t++) {
    const x = xs.subarray(t * d, (t + 1) * d);
    const z = range(0, d).reduce((a, k) => a + x[k] * pv.gate[k * n + 3], 0), sg = 1 / (1 + Math.exp(-z));
    const kt = Math.max(1, range(0, n).reduce((a, i) => a + mask[t * n + i], 0));
    const o = expertRef(x, pv, { e: 3, w: B, H: h, d });
    const dy = o.reduce((a, v, j) => a + v * R[t * d + j], 0);
    for (let k = 0; k < d; k++) want[k] += x[k] * sg * (1 - sg) * (s.experts / kt) * dy;
  }
  assertClose(col(ste.gate, n, 3), want, 1e-4, "STE gate gradient of the inactive block");
  assert.ok(want.some((v) => Math.abs(v) > 1e-3));

  const noSte = run({ ste: false, lambda: 0 });
  blockGradsZero(noSte);
  assert.ok(col(noSte.gate, n, 3).every((v) => v === 0), "without STE an inactive gate learns nothing");
  assert.ok(col(noSte.gate, n, 0).some((v) => v !== 0) || col(noSte.gate, n, 1).some((v) => v !== 0));

  // The sparsity loss: through G it does not reach inactive gates; through S (sparsity_ste) it does.
  assert.ok(col(run({ ste: false, lambda: 1 }).gate, n, 3).every((v) => v === 0));
  assert.ok(col(run({ ste: false, lambda: 1, sparsity_ste: true }).gate, n, 3).every((v) => v > 0));
});

Deno.test("dsmoe sparsity loss = lambda · mean G(g) / n_layers, and the training statistics", async () => {
  await initBackend("cpu");
  const cfg = cfgWith({ experts: 4, lambda: 0.5 }), N = 7;
  const p = randomParams(variant, cfg, 2), x = tf.tensor2d(new Rng(6).normal(new Float32Array(N * d), 1), [N, d]);
  const ctx = recordingCtx(cfg, true);
  variant.apply(x, p, ctx);
  const { thresholdedGate, mask } = dsmoeGates(x, p, dsmoeShape(cfg));
  const G = Array.from(await thresholdedGate.data()), m = Array.from(await mask.data());
  const mean = G.reduce((a, b) => a + b, 0) / G.length;
  assert.ok(mean > 0);
  assert.ok(Math.abs((await ctx.aux[0].data())[0] - (0.5 * mean) / BASE.n_layers) < 1e-6);
  assert.ok(Math.abs((await ctx.stats.sparsity_loss.data())[0] - mean) < 1e-6);
  assert.ok(Math.abs((await ctx.stats.active_frac.data())[0] - m.reduce((a, b) => a + b, 0) / m.length) < 1e-6);
  const none = range(0, N).filter((t) => range(0, 4).every((i) => m[t * 4 + i] === 0)).length / N;
  assert.ok(Math.abs((await ctx.stats.no_expert_frac.data())[0] - none) < 1e-6);
  const lambda0 = recordingCtx(cfgWith({ experts: 4, lambda: 0 }), true);
  variant.apply(x, p, lambda0);
  assert.equal(lambda0.aux.length, 0);
});

Deno.test("dsmoe train_gates soft: training weights every block by its sigmoid; evaluation still thresholds", async () => {
  await initBackend("cpu");
  const N = 7, n = 4, r = new Rng(31);
  const soft = cfgWith({ experts: n, train_gates: "soft", rescale: false, lambda: 2 });
  const hard = cfgWith({ experts: n, rescale: false, lambda: 2 });
  const p = randomParams(variant, soft, 5);
  const x = tf.tensor2d(r.normal(new Float32Array(N * d), 1), [N, d]);
  const g = tf.sigmoid(tf.matMul(x, p.gate)) as tf.Tensor2D;
  // Training: Σ_i g_i · o_i over ALL blocks (no threshold), L1 on g.
  const ctx = recordingCtx(soft, true);
  const y = variant.apply(x, p, ctx);
  assertClose(await y.data(), await maskedMixture(x, p.w13, p.w2, g).data(), 1e-5, "soft training output");
  const gMean = (await tf.mean(g).data())[0];
  assertClose(await ctx.stats.sparsity_loss.data(), [gMean], 1e-6, "soft sparsity = mean g");
  assertClose(await ctx.aux[0].data(), [2 * gMean / BASE.n_layers], 1e-6, "aux = lambda · mean g / n_layers");
  // The thresholded training forward differs (some blocks are off) ...
  const yHard = variant.apply(x, p, recordingCtx(hard, true));
  assert.ok(Math.max(...(await tf.abs(tf.sub(y, yHard)).data())) > 1e-3, "soft and thresholded training differ");
  // ... and evaluation is the same thresholded forward for both.
  const [es, eh] = [variant.apply(x, p, recordingCtx(soft, false)), variant.apply(x, p, recordingCtx(hard, false))];
  assert.deepEqual(await es.data(), await eh.data());
  tf.dispose([x, g, y, yHard, es, eh, ...Object.values(p)]);
});

Deno.test("dsmoe eval_taus: validated, and one re-evaluation config per τ (same weights, no sweep inside)", () => {
  const bad = [[0.5, 1], [0.3, 0.3], "0.5", new Array(33).fill(0).map((_, i) => (i + 1) / 40)];
  for (const v of bad) {
    const msgs = variant.validate(cfgWith({ eval_taus: v }));
    assert.deepEqual(msgs.length, 1, JSON.stringify(msgs));
    assert.match(msgs[0], /model\.ffn\.eval_taus = .* must be a list of at most 32 distinct numbers in \(0, 1\)/);
  }
  assert.match(variant.validate(cfgWith({ train_gates: "hard" }))[0], /train_gates = "hard" is not one of/);
  const cfg = cfgWith({ tau: 0.5, eval_taus: [0.2, 0.8] });
  const alts = variant.evalConfigs!(cfg);
  assert.deepEqual(Object.keys(alts), ["eval_tau_0.2", "eval_tau_0.8"]);
  assert.deepEqual(alts["eval_tau_0.8"], { ...cfg, ffn: { kind: "dsmoe", tau: 0.8, eval_taus: [] } });
  assert.deepEqual(variant.params(alts["eval_tau_0.8"]), variant.params(cfg)); // the trained weights fit
  assert.deepEqual(variant.evalConfigs!(cfgWith({})), {});
});
