import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../../backends/mod.ts";
import type { ModelConfig } from "../../core/config.ts";
import { TINY_MODEL } from "../moe_test_util.ts";
import { Rng } from "../../util/rng.ts";
import { createModel } from "../transformer.ts";
import { loadFfn, paramCount, paramSpecs } from "../variants.ts";
import type { FfnContext, FfnParams } from "./types.ts";
import { finedeepShape, variant } from "./finedeep.ts";
import { variant as dense } from "./dense.ts";

const BASE: ModelConfig = TINY_MODEL;

function cfgWith(ffn: Record<string, unknown>, over: Partial<ModelConfig> = {}): ModelConfig {
  return { ...BASE, ...over, ffn: { kind: "finedeep", ...ffn } };
}

function ctxFor(cfg: ModelConfig, residual?: tf.Tensor2D): FfnContext {
  return { cfg, layer: 0, training: false, rng: null, addAuxLoss() {}, addStat() {}, residual };
}

/** Random parameters for one block (routers and post-norm gains random too, so every path matters). */
function randomParams(cfg: ModelConfig, seed: number): Record<string, tf.Tensor> {
  const r = new Rng(seed), out: Record<string, tf.Tensor> = {};
  for (const s of variant.params(cfg)) {
    const vals = r.normal(new Float32Array(s.shape.reduce((a, b) => a * b, 1)), 0.5);
    if (s.name.endsWith("post_norm")) { for (let i = 0; i < vals.length; i++) vals[i] = 1 + 0.3 * vals[i]; }
    out[s.name] = tf.tensor(vals, s.shape);
  }
  return out;
}

/**
 * The naive reference: every expert output o_k = p_k W2_k formed explicitly, gate from r_k · o_k
 * (output) or r_k · x_m (input), Σ_k g_k o_k, and the sub-layer residual stream.
 */
function naiveBlock(cfg: ModelConfig, x: tf.Tensor2D, residual: tf.Tensor2D, p: FfnParams): tf.Tensor2D {
  const s = finedeepShape(cfg), E = s.expert_width, H = s.sublayer_width, eps = cfg.norm_eps;
  const norm = (t: tf.Tensor2D) => tf.mul(t, tf.rsqrt(tf.add(tf.mean(tf.square(t), -1, true), eps))) as tf.Tensor2D;
  let stream = residual;
  const ys: tf.Tensor2D[] = [];
  for (let m = 0; m < s.m; m++) {
    if (m > 0) stream = tf.add(stream, ys[m - 1]);
    const xm = m === 0 ? x : s.rmsnorm === "post" ? stream : norm(stream);
    const w13 = p[`sub${m}.w13`] as tf.Tensor2D, w2 = p[`sub${m}.w2`] as tf.Tensor2D;
    const outs: tf.Tensor2D[] = [], logits: tf.Tensor2D[] = [];
    for (let k = 0; k < s.k; k++) {
      const a = tf.matMul(xm, tf.slice(w13, [0, k * E], [-1, E]));
      const b = tf.matMul(xm, tf.slice(w13, [0, H + k * E], [-1, E]));
      const h = tf.mul(tf.mul(a, tf.sigmoid(a)), b) as tf.Tensor2D;
      const o: tf.Tensor2D = tf.matMul(h, tf.slice(w2, [k * E, 0], [E, -1]));
      outs.push(o);
      if (s.norm_fn !== "none") {
        const r = tf.slice(p[`sub${m}.router`], [s.router === "expert" ? k : 0, 0], [1, -1]) as tf.Tensor2D;
        logits.push(tf.matMul(s.score === "output" ? o : xm, r, false, true)); // [N, 1]
      }
    }
    let y: tf.Tensor2D;
    if (s.norm_fn === "none") y = tf.addN(outs);
    else {
      const l = tf.concat(logits, 1);
      const g = s.norm_fn === "sigmoid" ? tf.sigmoid(l) : tf.softmax(l);
      y = tf.addN(outs.map((o, k) => tf.mul(o, tf.slice(g, [0, k], [-1, 1]))));
    }
    if (s.rmsnorm !== "pre") y = tf.mul(norm(y), p[`sub${m}.post_norm`]);
    ys.push(y);
  }
  return tf.addN(ys);
}

async function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): Promise<{ diff: number; scale: number }> {
  const [x, y] = [await a.data(), await b.data()];
  assert.equal(x.length, y.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < x.length; i++) {
    diff = Math.max(diff, Math.abs(x[i] - y[i]));
    scale = Math.max(scale, Math.abs(y[i]));
  }
  return { diff, scale };
}

Deno.test("finedeep: shapes, parameter names and counts for several (M, K)", async () => {
  await initBackend("cpu");
  for (const [m, k] of [[1, 1], [1, 4], [2, 2], [3, 2], [4, 1], [2, 6]]) {
    const cfg = cfgWith({ m, k });
    const s = finedeepShape(cfg);
    assert.equal(s.expert_width, 24 / (m * k), `E for ${m}x${k}`);
    const specs = variant.params(cfg);
    assert.deepEqual(
      specs.map((p) => `${p.name}[${p.shape}]`),
      Array.from({ length: m }, (_, i) => [
        `sub${i}.w13[8,${2 * k * s.expert_width}]`,
        `sub${i}.w2[${k * s.expert_width},8]`,
        `sub${i}.router[${k},8]`,
      ]).flat(),
    );
    assert.equal(variant.paramCount(cfg), specs.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0));
    assert.equal(variant.paramCount(cfg), 3 * 8 * 24 + m * k * 8);
    assert.equal(variant.flopsPerToken(cfg), 6 * 8 * 24 + 2 * 24);
    const p = randomParams(cfg, 1);
    const x = tf.randomNormal([5, 8]) as tf.Tensor2D;
    const y = variant.apply(x, p, ctxFor(cfg, tf.randomNormal([5, 8]) as tf.Tensor2D));
    assert.deepEqual(y.shape, [5, 8]);
    tf.dispose([x, y, ...Object.values(p)]);
    // The whole model builds, and its variables are exactly the counted parameters.
    const model = await createModel(cfg, 3);
    assert.equal([...model.params.values()].reduce((a, v) => a + v.size, 0), paramCount(cfg));
    const logits = tf.tidy(() => model.forward(tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], "int32")));
    assert.deepEqual(logits.shape, [2, 3, 16]);
    logits.dispose();
    model.dispose();
  }
  // Other router forms and norms change only the overhead.
  assert.equal(variant.paramCount(cfgWith({ m: 2, k: 3, router: "sublayer" })), 3 * 8 * 24 + 2 * 8);
  assert.equal(variant.paramCount(cfgWith({ m: 2, k: 3, norm_fn: "none" })), 3 * 8 * 24);
  assert.equal(variant.paramCount(cfgWith({ m: 2, k: 3, rmsnorm: "both" })), 3 * 8 * 24 + 2 * 3 * 8 + 2 * 8);
  assert.equal(variant.flopsPerToken(cfgWith({ m: 2, k: 3, score: "input" })), 6 * 8 * 24 + 2 * (2 * 8 * 3));
  assert.equal(variant.flopsPerToken(cfgWith({ m: 2, k: 3, norm_fn: "none" })), 6 * 8 * 24);
});

Deno.test("finedeep: expert width auto-matches the dense parameter count; expert_width overrides", () => {
  // d_ff divisible by M·K: E = d_ff / (M·K) exactly.
  assert.equal(finedeepShape(cfgWith({ m: 4, k: 4 }, { d_model: 64, d_ff: 256 })).expert_width, 16);
  // Not divisible: the closest count. 3·64·260 = 49,920; 16 experts of 16 + routers 16·64 = 50,176 (+256).
  const s16 = finedeepShape(cfgWith({ m: 16, k: 1 }, { d_model: 64, d_ff: 260 }));
  assert.equal(s16.hidden, 256);
  const s4 = finedeepShape(cfgWith({ m: 2, k: 2 }, { d_model: 64, d_ff: 260 }));
  assert.equal(s4.hidden, 260);
  assert.equal(finedeepShape(cfgWith({ m: 2, k: 2, expert_width: 7 })).hidden, 28);
});

Deno.test("finedeep: M = K = 1 with norm_fn none equals the dense FFN bit for bit (block and whole model)", async () => {
  await initBackend("cpu");
  const cfg = cfgWith({ m: 1, k: 1, norm_fn: "none" });
  const dcfg: ModelConfig = { ...BASE, ffn: { kind: "dense" } };
  assert.deepEqual(
    variant.params(cfg).map((s) => [s.shape, s.std, s.init]),
    dense.params(dcfg).map((s) => [s.shape, s.std, s.init]),
  );
  assert.equal(variant.paramCount(cfg), dense.paramCount(dcfg));
  assert.equal(variant.flopsPerToken(cfg), dense.flopsPerToken(dcfg));
  const r = new Rng(7);
  const w13 = tf.tensor2d(r.normal(new Float32Array(8 * 48), 0.4), [8, 48]);
  const w2 = tf.tensor2d(r.normal(new Float32Array(24 * 8), 0.4), [24, 8]);
  const x = tf.tensor2d(r.normal(new Float32Array(10 * 8), 1), [10, 8]);
  const a = variant.apply(x, { "sub0.w13": w13, "sub0.w2": w2 }, ctxFor(cfg));
  const b = dense.apply(x, { w13, w2 }, ctxFor(dcfg));
  assert.deepEqual(await a.data(), await b.data());
  tf.dispose([w13, w2, x, a, b]);

  // Whole model: same weights (renamed) -> identical loss and gradients.
  await loadFfn("dense");
  const dm = await createModel(dcfg, 5);
  const weights = await dm.getWeights();
  const renamed = new Map(
    [...weights].map(([k, v]) => [k.replace(".ffn.w13", ".ffn.sub0.w13").replace(".ffn.w2", ".ffn.sub0.w2"), v]),
  );
  const fm = await createModel(cfg, 99, { from: { weights: renamed } });
  const xs = tf.tensor2d([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]], [2, 6], "int32");
  const ys = tf.tensor2d([[2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13]], [2, 6], "int32");
  const gd = tf.variableGrads(() => dm.loss(xs, ys), dm.variables());
  const gf = tf.variableGrads(() => fm.loss(xs, ys), fm.variables());
  assert.equal((await gd.value.data())[0], (await gf.value.data())[0]);
  for (const s of dm.specs) {
    const fname = s.name.replace(".ffn.w13", ".ffn.sub0.w13").replace(".ffn.w2", ".ffn.sub0.w2");
    assert.deepEqual(await gd.grads[dm.param(s.name).name].data(), await gf.grads[fm.param(fname).name].data(), s.name);
  }
  tf.dispose([xs, ys, gd.value, gf.value, ...Object.values(gd.grads), ...Object.values(gf.grads)]);
  dm.dispose();
  fm.dispose();
});

Deno.test("finedeep: the fused form (one down-projection, u_k = W2_k r_k) equals the naive per-expert form", async () => {
  await initBackend("cpu");
  const options: Record<string, unknown>[] = [
    { m: 1, k: 4 },
    { m: 2, k: 3 },
    { m: 3, k: 2, norm_fn: "softmax" },
    { m: 2, k: 4, router: "sublayer" },
    { m: 2, k: 4, router: "sublayer", norm_fn: "softmax" },
    { m: 2, k: 3, score: "input" },
    { m: 2, k: 3, score: "input", norm_fn: "softmax" },
    { m: 2, k: 3, score: "input", router: "sublayer" },
    { m: 3, k: 2, norm_fn: "none" },
    { m: 3, k: 2, rmsnorm: "post" },
    { m: 3, k: 2, rmsnorm: "both" },
    { m: 4, k: 1 },
  ];
  for (const [i, o] of options.entries()) {
    const cfg = cfgWith(o);
    const p = randomParams(cfg, 10 + i);
    const r = new Rng(100 + i);
    const x = tf.tensor2d(r.normal(new Float32Array(7 * 8), 1), [7, 8]);
    const res = tf.tensor2d(r.normal(new Float32Array(7 * 8), 1), [7, 8]);
    const fused = variant.apply(x, p, ctxFor(cfg, res));
    const naive = naiveBlock(cfg, x, res, p);
    const { diff, scale } = await maxAbsDiff(fused, naive);
    assert.ok(scale > 0.1, `output not trivial for ${JSON.stringify(o)}`);
    assert.ok(diff < 2e-5 * scale, `${JSON.stringify(o)}: max |fused - naive| = ${diff} (scale ${scale})`);
    tf.dispose([x, res, fused, naive, ...Object.values(p)]);
  }
});

Deno.test("finedeep: gradients reach every expert (gate, up, down) and every router of every layer", async () => {
  await initBackend("cpu");
  for (
    const o of [{ m: 2, k: 3 }, { m: 2, k: 2, score: "input", norm_fn: "softmax" }, { m: 3, k: 2, rmsnorm: "both" }]
  ) {
    const cfg = cfgWith(o);
    const s = finedeepShape(cfg), E = s.expert_width, H = s.sublayer_width;
    const model = await createModel(cfg, 4);
    const xs = tf.tensor2d([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]], [2, 6], "int32");
    const ys = tf.tensor2d([[2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13]], [2, 6], "int32");
    const { grads, value } = tf.variableGrads(() => model.loss(xs, ys), model.variables());
    const norm = (t: tf.Tensor) => tf.tidy(() => tf.sqrt(tf.sum(tf.square(t))).dataSync()[0]);
    for (let l = 0; l < cfg.n_layers; l++) {
      for (let m = 0; m < s.m; m++) {
        const g = (n: string) => grads[model.param(`layers.${l}.ffn.sub${m}.${n}`).name];
        for (let k = 0; k < s.k; k++) {
          const where = `${JSON.stringify(o)} layer ${l} sub ${m} expert ${k}`;
          assert.ok(norm(tf.slice(g("w13"), [0, k * E], [-1, E])) > 0, `gate grad ${where}`);
          assert.ok(norm(tf.slice(g("w13"), [0, H + k * E], [-1, E])) > 0, `up grad ${where}`);
          assert.ok(norm(tf.slice(g("w2"), [k * E, 0], [E, -1])) > 0, `down grad ${where}`);
          assert.ok(norm(tf.slice(g("router"), [k, 0], [1, -1])) > 0, `router grad ${where}`);
        }
        if (s.rmsnorm !== "pre") assert.ok(norm(g("post_norm")) > 0);
      }
    }
    tf.dispose([xs, ys, value, ...Object.values(grads)]);
    model.dispose();
  }
});

Deno.test("finedeep: bad options give one clear message each", () => {
  const v = (o: Record<string, unknown>, over: Partial<ModelConfig> = {}) => variant.validate(cfgWith(o, over));
  assert.deepEqual(v({}), []);
  assert.match(v({ experts: 4 })[0], /model\.ffn\.experts is not an option of ffn kind "finedeep"/);
  assert.match(v({ m: 0 })[0], /model\.ffn\.m = 0 must be an integer in \[1, 1024\]/);
  assert.match(v({ k: 2.5 })[0], /model\.ffn\.k = 2\.5/);
  assert.match(v({ score: "outputs" })[0], /model\.ffn\.score = "outputs" is not one of: output, input/);
  assert.match(v({ norm_fn: "relu" })[0], /norm_fn = "relu" is not one of: sigmoid, softmax, none/);
  assert.match(v({ router: "token" })[0], /router = "token"/);
  assert.match(v({ rmsnorm: "pre+post" })[0], /rmsnorm = "pre\+post" is not one of: pre, post, both/);
  assert.match(v({ expert_width: 0 })[0], /expert_width = 0 must be a positive integer or null/);
  assert.match(v({ m: 8, k: 8 })[0], /model\.d_ff = 24 is smaller than model\.ffn\.m × model\.ffn\.k = 64/);
  assert.match(v({ m: 2, k: 1, norm_fn: "softmax" })[0], /k = 1 normalises over a single expert/);
  assert.match(v({ score: "input", router: "sublayer", norm_fn: "softmax" })[0], /one logit per sub-layer/);
  assert.throws(() => paramSpecs(cfgWith({ m: "2" }), variant), /model\.ffn\.m = "2"/);
  assert.match(v({ gate_bias: 11 })[0], /gate_bias = 11 must be a number in \[-10, 10\] or null/);
  assert.match(v({ gate_bias: 3, norm_fn: "softmax" })[0], /gate_bias = 3 needs model\.ffn\.norm_fn = "sigmoid"/);
});

Deno.test("finedeep gate_bias: a learnable bias per gate starting at b, so zero routers start every gate at σ(b)", async () => {
  await initBackend("cpu");
  const open = cfgWith({ m: 2, k: 3, gate_bias: 3 }), plain = cfgWith({ m: 2, k: 3 });
  const specs = variant.params(open);
  assert.deepEqual(
    specs.filter((sp) => sp.name.endsWith("gate_bias")),
    [0, 1].map((m) => ({ name: `sub${m}.gate_bias`, shape: [3], init: "zeros", decay: false })),
  );
  const total = specs.reduce((a, sp) => a + sp.shape.reduce((x, y) => x * y, 1), 0);
  assert.equal(variant.paramCount(open), total); // the formula = the sum over the specs
  // One sub-layer, zero routers: every gate is σ(b) instead of σ(0) = 0.5, so the output scales by σ(b)/0.5.
  const one = (o: Record<string, unknown>) => cfgWith({ m: 1, k: 3, ...o });
  const p = randomParams(one({ gate_bias: 3 }), 9);
  p["sub0.router"] = tf.zerosLike(p["sub0.router"]);
  p["sub0.gate_bias"] = tf.zerosLike(p["sub0.gate_bias"]);
  const x = tf.tensor2d(new Rng(2).normal(new Float32Array(5 * BASE.d_model), 1), [5, BASE.d_model]);
  const yOpen = variant.apply(x, p, ctxFor(one({ gate_bias: 3 }), x));
  const yHalf = variant.apply(x, p, ctxFor(one({}), x));
  const ratio = 1 / (1 + Math.exp(-3)) / 0.5;
  const { diff, scale } = await maxAbsDiff(yOpen, tf.mul(yHalf, ratio));
  assert.ok(diff <= 1e-5 * (1 + scale), `diff ${diff}`);
  // The bias is learnable: the stored offset moves the gates.
  p["sub0.gate_bias"] = tf.fill([3], -3);
  const yZero = variant.apply(x, p, ctxFor(one({ gate_bias: 3 }), x)); // b + offset = 0: back to 0.5
  const back = await maxAbsDiff(yZero, yHalf);
  assert.ok(back.diff <= 1e-5 * (1 + back.scale), `diff ${back.diff}`);
  assert.deepEqual(variant.validate(plain), []);
  tf.dispose([x, yOpen, yHalf, yZero, ...Object.values(p)]);
});

Deno.test("finedeep: the fused default form (FlFinedeep on wasm, native, webgpu) equals the naive form, values and gradients", async () => {
  const { nativeAvailability } = await import("../../backends/native/mod.ts");
  const gpu = (navigator as { gpu?: GPU }).gpu;
  const hasAdapter = gpu ? (await gpu.requestAdapter()) !== null : false; // llvmpipe is enough
  const backends = ["wasm", ...(nativeAvailability().ok ? ["native"] : []), ...(hasAdapter ? ["webgpu"] : [])];
  // Odd sizes: 9 rows, expert width 5, one sub-layer (no residual stream), 1..3 sub-layers, and more rows
  // than one of the native kernel's row blocks (FD_ROWS), not a multiple of it.
  const { FD_ROWS } = await import("../../backends/native/backend.ts");
  const configs = [{ m: 2, k: 3 }, { m: 1, k: 4 }, { m: 3, k: 2, expert_width: 5 }];
  const rowsOf = [9, 9, FD_ROWS + 37];
  for (const backend of backends) {
    await initBackend(backend as "wasm" | "native" | "webgpu");
    const kernel = "FlFinedeep";
    assert.ok(tf.getKernel(kernel, backend) !== undefined, `${backend} registers ${kernel}`);
    for (const [ci, o] of configs.entries()) {
      const cfg = cfgWith(o), where = `${backend} ${JSON.stringify(o)}`;
      const p = randomParams(cfg, 7 + ci);
      const r = new Rng(77 + ci);
      const R = rowsOf[ci], rand = () => tf.tensor2d(r.normal(new Float32Array(R * 8), 1), [R, 8]);
      const x0 = rand(), res0 = rand(), w = rand();
      const names = [...Object.keys(p), "x", "residual"];
      const vars = [...Object.values(p), x0, res0].map((t, i) =>
        tf.variable(t, true, `fd_fused_${backend}_${ci}_${i}`)
      );
      const pv = Object.fromEntries(names.map((n, i) => [n, vars[i]]));
      const x = pv.x as tf.Tensor2D, res = pv.residual as tf.Tensor2D;
      const loss = (f: () => tf.Tensor2D) => () => tf.sum(tf.mul(f(), w)) as tf.Scalar;
      const a = tf.variableGrads(loss(() => variant.apply(x, pv, ctxFor(cfg, res))), vars);
      const b = tf.variableGrads(loss(() => naiveBlock(cfg, x, res, pv)), vars);
      const prof = await tf.profile(() => variant.apply(x, pv, ctxFor(cfg, res)));
      assert.ok(prof.kernelNames.includes(kernel), `${where}: the default form runs ${kernel}`);
      tf.dispose(prof.result as tf.Tensor);
      const v = await maxAbsDiff(a.value, b.value);
      assert.ok(v.diff < 2e-5 * Math.max(v.scale, 1), `${where}: loss ${v.diff}`);
      for (const [i, n] of names.entries()) {
        if (n === "residual" && o.m === 1) continue; // one sub-layer never reads the stream
        const d = await maxAbsDiff(a.grads[vars[i].name], b.grads[vars[i].name]);
        assert.ok(d.scale > 0, `${where}: gradient of ${n} is zero`);
        assert.ok(d.diff < 2e-5 * Math.max(d.scale, 1), `${where}: d ${n}: max |diff| ${d.diff} (scale ${d.scale})`);
      }
      tf.dispose([x0, res0, w, a.value, b.value, ...Object.values(a.grads), ...Object.values(b.grads), ...vars]);
      tf.dispose(Object.values(p));
    }
  }
});
