import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../backends/mod.ts";
import type { ModelConfig } from "../../core/config.ts";
import { Rng } from "../../util/rng.ts";
import { balanceLoss } from "../moe.ts";
import {
  assertClose,
  expertRef,
  randomParams,
  range,
  recordingCtx,
  TINY_MODEL,
  weightedSum,
} from "../moe_test_util.ts";
import { topkMoeForward, topkMoeShape, topkRouting, variant } from "./topk_moe.ts";
import { variant as dense } from "./dense.ts";

const BASE: ModelConfig = TINY_MODEL;
const cfgWith = (ffn: Record<string, unknown>): ModelConfig => ({ ...BASE, ffn: { kind: "topk_moe", ...ffn } });

Deno.test("topk_moe validate names the field, the value and the allowed range", () => {
  const msgs = variant.validate(cfgWith({ experts: 5, top_k: 9, foo: 1, train_compute: "x", balance_coef: -1 }));
  const want = [
    /model\.ffn\.foo is not an option/,
    /model\.ffn\.top_k = 9 must be an integer in \[1, model\.ffn\.experts = 5\]/,
    /model\.ffn\.experts = 5 must divide model\.d_ff = 24/,
    /model\.ffn\.balance_coef = -1 must be a number in \[0, 10\]/,
    /model\.ffn\.train_compute = "x" is not one of: masked, sparse/,
  ];
  for (const w of want) assert.ok(msgs.some((m) => w.test(m)), `${w} in ${msgs.join(" | ")}`);
  assert.equal(msgs.length, want.length);
  assert.deepEqual(variant.validate(cfgWith({})), []);
  assert.deepEqual(variant.validate(cfgWith({ experts: 5, expert_width: 24 })), []); // explicit width: no divisibility
  assert.throws(() => topkMoeShape(cfgWith({ experts: 0 })), /experts = 0 must be an integer in \[1, 1024\]/);
});

Deno.test("topk_moe params, counts and FLOPs", () => {
  const cfg = cfgWith({ experts: 4, top_k: 2 }), d = 8, w = 6;
  assert.deepEqual(variant.params(cfg).map((s) => [s.name, s.shape]), [
    ["router", [d, 4]],
    ["w13", [d, 2 * 4 * w]],
    ["w2", [4 * w, d]],
  ]);
  const total = variant.params(cfg).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  assert.equal(variant.paramCount(cfg), total);
  assert.equal(variant.flopsPerToken(cfg), 2 * d * 4 + 2 * 6 * d * w); // router + 2 experts
  assert.deepEqual(variant.sparseCost(cfg), {
    experts: 4,
    expert_params: 3 * d * w,
    expert_flops: 6 * d * w,
    fixed_params: d * 4,
    fixed_flops: 2 * d * 4,
    active_experts: 2,
  });
});

/** Float64 reference: logits, softmax, top-k (ties to the lower index), weights, Σ_e c_e expert_e(x). */
function reference(cfg: ModelConfig, x: Float32Array, N: number, p: Record<string, Float32Array>): number[][] {
  const s = topkMoeShape(cfg), d = cfg.d_model, E = s.experts, w = s.expert_width, H = E * w;
  return range(0, N).map((t) => {
    const xt = x.subarray(t * d, (t + 1) * d);
    const z = range(0, E).map((e) => range(0, d).reduce((a, k) => a + xt[k] * p.router[k * E + e], 0));
    const mx = Math.max(...z), ex = z.map((v) => Math.exp(v - mx)), sum = ex.reduce((a, b) => a + b, 0);
    const sel = range(0, E).sort((a, b) => z[b] - z[a] || a - b).slice(0, s.top_k);
    const selSum = sel.reduce((a, e) => a + ex[e], 0);
    const c = (e: number) => s.renormalize ? ex[e] / selSum : ex[e] / sum;
    return weightedSum(d, sel.map((e) => [c(e), expertRef(xt, p, { e, w, H, d })]));
  });
}

Deno.test("topk_moe: masked, sparse and an explicit per-expert loop (float64) agree", async () => {
  await initBackend("cpu");
  const N = 9, r = new Rng(2);
  for (const ffn of [{ experts: 4, top_k: 2 }, { experts: 6, top_k: 1, renormalize: false, expert_width: 5 }]) {
    const cfg = cfgWith(ffn);
    const p = randomParams(variant, cfg, 7);
    const xs = r.normal(new Float32Array(N * 8), 1), x = tf.tensor2d(xs, [N, 8]);
    const pv: Record<string, Float32Array> = {};
    for (const [k, t] of Object.entries(p)) pv[k] = t.dataSync() as Float32Array;
    const want = reference(cfg, xs, N, pv).flat();
    const ctx = recordingCtx(cfg, false);
    const viaApply = variant.apply(x, p, ctx); // inference: sparse path on cpu
    const { coef } = topkRouting(x, p.router, topkMoeShape(cfg));
    const masked = topkMoeForward(x, p, coef, "masked");
    const sparse = topkMoeForward(x, p, coef, "sparse");
    assertClose(await viaApply.data(), want, 2e-5, `apply ${JSON.stringify(ffn)}`);
    assertClose(await masked.data(), want, 2e-5, `masked ${JSON.stringify(ffn)}`);
    assertClose(await sparse.data(), want, 2e-5, `sparse ${JSON.stringify(ffn)}`);
    // Every token has exactly top_k non-zero weights.
    const cv = await coef.data(), E = topkMoeShape(cfg).experts;
    for (let t = 0; t < N; t++) {
      assert.equal(range(0, E).filter((e) => cv[t * E + e] !== 0).length, topkMoeShape(cfg).top_k);
    }
    tf.dispose([x, viaApply, coef, masked, sparse, ...Object.values(p)]);
  }
});

Deno.test("topk_moe gradients: unselected experts get exactly none, the router learns through the selected weights", async () => {
  await initBackend("cpu");
  const N = 8, d = 8, E = 4, w = 6;
  for (const [balance_coef, train_compute] of [[0, "masked"], [0.1, "masked"], [0, "sparse"]] as const) {
    const cfg = cfgWith({ experts: E, top_k: 2, balance_coef, train_compute });
    const p0 = randomParams(variant, cfg, 3);
    // Expert 3 can never win: its router column is very negative (and x is positive).
    const rv = p0.router.dataSync().slice();
    for (let k = 0; k < d; k++) rv[k * E + 3] = -5; // logit ≈ -30: never selected, probability > 0
    const vars: Record<string, tf.Variable> = {};
    for (const [k, t] of Object.entries(p0)) vars[k] = tf.variable(k === "router" ? tf.tensor2d(rv, [d, E]) : t);
    const x = tf.abs(tf.tensor2d(new Rng(4).normal(new Float32Array(N * d), 1), [N, d])); // x > 0: logit 3 ≪ 0
    const ctx = recordingCtx(cfg, true);
    const { grads } = tf.variableGrads(() => {
      const y = variant.apply(x, vars, ctx);
      const loss = tf.sum(tf.mul(y, tf.range(0, N * d).reshape([N, d])));
      return (ctx.aux.length ? tf.add(loss, tf.addN(ctx.aux)) : loss) as tf.Scalar;
    });
    const g13 = await grads[vars.w13.name].data(), g2 = await grads[vars.w2.name].data();
    const gr = await grads[vars.router.name].data();
    const H = E * w;
    for (let k = 0; k < d; k++) {
      for (const c of [...range(3 * w, w), ...range(H + 3 * w, w)]) assert.equal(g13[k * 2 * H + c], 0, `w13 col ${c}`);
    }
    for (const r of range(3 * w, w)) for (let c = 0; c < d; c++) assert.equal(g2[r * d + c], 0, `w2 row ${r}`);
    assert.ok(g13.some((v) => v !== 0) && g2.some((v) => v !== 0));
    const col3 = range(0, d).map((k) => gr[k * E + 3]);
    if (balance_coef === 0) assert.ok(col3.every((v) => v === 0), "unselected router column: no LM gradient");
    else assert.ok(col3.some((v) => v !== 0), "the balance loss reaches every router column");
    assert.ok(range(0, d).some((k) => gr[k * E] !== 0), "selected router columns learn");
    assert.equal(ctx.aux.length, balance_coef > 0 ? 1 : 0);
    tf.dispose([x, ...Object.values(vars), ...Object.values(grads)]);
  }
});

Deno.test("topk_moe adds balance_coef · balanceLoss when training, nothing in evaluation", async () => {
  await initBackend("cpu");
  const cfg = cfgWith({ experts: 4, top_k: 2, balance_coef: 0.25 });
  const p = randomParams(variant, cfg, 9), x = tf.tensor2d(new Rng(1).normal(new Float32Array(40), 1), [5, 8]);
  const ctx = recordingCtx(cfg, true);
  variant.apply(x, p, ctx);
  const { probs, mask } = topkRouting(x, p.router, topkMoeShape(cfg));
  const lb = (await balanceLoss(probs, mask, 2).data())[0];
  assert.ok(Math.abs((await ctx.aux[0].data())[0] - 0.25 * lb) < 1e-6);
  assert.ok(Math.abs((await ctx.stats.balance_loss.data())[0] - lb) < 1e-6);
  const eval_ = recordingCtx(cfg, false);
  variant.apply(x, p, eval_);
  assert.equal(eval_.aux.length, 0);
});

Deno.test("topk_moe upcycling: copy-upcycled equals the dense FFN for any router; split with k = E and a uniform router too", async () => {
  await initBackend("cpu");
  const d = 8, h = 24, N = 6, r = new Rng(11);
  const w13 = r.normal(new Float32Array(d * 2 * h), 0.5), w2 = r.normal(new Float32Array(h * d), 0.5);
  const x = tf.tensor2d(r.normal(new Float32Array(N * d), 1), [N, d]);
  const denseY = await dense.apply(
    x,
    { w13: tf.tensor2d(w13, [d, 2 * h]), w2: tf.tensor2d(w2, [h, d]) },
    recordingCtx(BASE, false),
  )
    .data();
  const cases: [Record<string, unknown>, "random" | "zero"][] = [
    [{ experts: 4, top_k: 2, expert_width: h }, "random"], // copy
    [{ experts: 3, top_k: 1, expert_width: h }, "random"], // copy, top-1
    [{ experts: 4, top_k: 4 }, "zero"], // split, all active
    [{ experts: 4, top_k: 4, expert_width: 12 }, "zero"], // 2 chunks x 2 replicas, all active
  ];
  for (const [ffn, router] of cases) {
    const cfg = cfgWith(ffn), s = topkMoeShape(cfg);
    const up = variant.upcycleFromDense(cfg, { w13, w2, d_model: d, d_ff: h });
    assert.deepEqual(Object.keys(up).sort(), ["w13", "w2"]);
    const rw = router === "zero" ? new Float32Array(d * s.experts) : r.normal(new Float32Array(d * s.experts), 1);
    const p = {
      router: tf.tensor2d(rw, [d, s.experts]),
      w13: tf.tensor2d(up.w13, [d, 2 * s.experts * s.expert_width]),
      w2: tf.tensor2d(up.w2, [s.experts * s.expert_width, d]),
    };
    for (const compute of ["masked", "sparse"] as const) {
      const { coef } = topkRouting(x, p.router, s);
      assertClose(await topkMoeForward(x, p, coef, compute).data(), denseY, 1e-5, `${JSON.stringify(ffn)} ${compute}`);
    }
  }
  // Split with k < E at a uniform router: (E/k) Σ_selected o_e, not the dense FFN.
  const cfg = cfgWith({ experts: 4, top_k: 2 });
  const up = variant.upcycleFromDense(cfg, { w13, w2, d_model: d, d_ff: h });
  const p = { router: tf.zeros([d, 4]), w13: tf.tensor2d(up.w13, [d, 48]), w2: tf.tensor2d(up.w2, [24, d]) };
  const y = await topkMoeForward(x, p, topkRouting(x, p.router, topkMoeShape(cfg)).coef, "masked").data();
  assert.ok(y.some((v, i) => Math.abs(v - denseY[i]) > 1e-3));
  assert.throws(
    () => variant.upcycleFromDense(cfgWith({ experts: 4, expert_width: 5 }), { w13, w2, d_model: d, d_ff: h }),
    /expert_width = 5 must divide d_ff/,
  );
  assert.throws(
    () => variant.upcycleFromDense(cfgWith({ experts: 3, expert_width: 12 }), { w13, w2, d_model: d, d_ff: h }),
    /experts = 3 must be a multiple of d_ff \/ expert_width = 2/,
  );
});
