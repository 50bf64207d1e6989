import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/mod.ts";
import { DEFAULT_MODEL, type ModelConfig } from "../core/config.ts";
import { Rng } from "../util/rng.ts";
import { createModel, type Transformer } from "./transformer.ts";
import {
  availableFfnKinds,
  flopsPerToken,
  loadFfn,
  paramCount,
  paramSpecs,
  validateModel,
  validateModelConfig,
} from "./variants.ts";

const TINY: ModelConfig = {
  ...DEFAULT_MODEL,
  vocab_size: 16,
  d_model: 8,
  n_layers: 2,
  n_heads: 2,
  d_ff: 12,
  seq_len: 6,
  init_std: 0.3,
};

function tokens(n: number, vocab: number, seed: number): Int32Array {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => r.int(vocab));
}

async function lossOf(m: Transformer, x: tf.Tensor, y: tf.Tensor): Promise<number> {
  const l = tf.tidy(() => m.loss(x, y));
  const v = (await l.data())[0];
  l.dispose();
  return v;
}

async function gradsOf(m: Transformer, x: tf.Tensor, y: tf.Tensor): Promise<Map<string, Float32Array>> {
  const { grads, value } = tf.variableGrads(() => m.loss(x, y), m.variables());
  const out = new Map<string, Float32Array>();
  for (const s of m.specs) out.set(s.name, new Float32Array(await grads[m.param(s.name).name].data()));
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

Deno.test("paramCount is exact: equals the created variables, tied and untied; reference model has 885,888", async () => {
  await initBackend("cpu");
  for (const cfg of [TINY, { ...TINY, tie_embeddings: false }, { ...TINY, n_layers: 3, d_ff: 20 }]) {
    const m = await createModel(cfg, 1);
    const created = [...m.params.values()].reduce((a, v) => a + v.size, 0);
    assert.equal(paramCount(cfg), created);
    m.dispose();
  }
  await loadFfn("dense");
  assert.equal(paramCount(DEFAULT_MODEL), 885_888); // compute.md §2
  assert.equal(paramCount({ ...DEFAULT_MODEL, tie_embeddings: false }), 885_888 + 128 * 256);
});

Deno.test("parameter names are the documented stable names, in order", async () => {
  const ffn = await loadFfn("dense");
  const names = paramSpecs({ ...TINY, n_layers: 1, tie_embeddings: false }, ffn).map((s) => `${s.name}[${s.shape}]`);
  assert.deepEqual(names, [
    "tok_emb[16,8]",
    "layers.0.norm1[8]",
    "layers.0.attn.wq[8,8]",
    "layers.0.attn.wk[8,8]",
    "layers.0.attn.wv[8,8]",
    "layers.0.attn.wo[8,8]",
    "layers.0.norm2[8]",
    "layers.0.ffn.w13[8,24]",
    "layers.0.ffn.w2[12,8]",
    "norm_f[8]",
    "head[8,16]",
  ]);
});

Deno.test("flopsPerToken matches a hand-worked count", async () => {
  await loadFfn("dense");
  // d=8, L=2, T=6, d_ff=12, V=16, per layer: qkv 2*8*24=384, wo 2*8*8=128, attention 4*6*8=192,
  // ffn 2*8*24 + 2*12*8 = 576  -> 1280; x2 layers = 2560; head 2*8*16 = 256 -> 2816.
  assert.equal(flopsPerToken(TINY), 2816);
  // Reference model: 12.48 GFLOP per 2048-token training step (compute.md §2: "≈12.5").
  assert.equal(flopsPerToken(DEFAULT_MODEL), 2_031_616);
  assert.equal(Math.round(3 * 2048 * flopsPerToken(DEFAULT_MODEL) / 1e7) / 100, 12.48);
});

Deno.test("forward shapes; shorter sequences work; too long is rejected", async () => {
  await initBackend("cpu");
  const m = await createModel(TINY, 3);
  const x = tf.tensor2d(tokens(3 * 6, 16, 1), [3, 6], "int32");
  const logits = tf.tidy(() => m.forward(x));
  assert.deepEqual(logits.shape, [3, 6, 16]);
  const short = tf.tidy(() => m.forward(tf.slice(x, [0, 0], [3, 4])));
  assert.deepEqual(short.shape, [3, 4, 16]);
  // Causal: the first 4 positions do not see positions 4..5, so the prefix logits agree.
  const full = await logits.data(), pre = await short.data();
  for (let b = 0; b < 3; b++) {
    for (let i = 0; i < 4 * 16; i++) assert.ok(Math.abs(full[b * 96 + i] - pre[b * 64 + i]) < 1e-6);
  }
  assert.throws(() => m.forward(tf.zeros([1, 7], "int32")), /exceeds model.seq_len = 6/);
  tf.dispose([x, logits, short]);
  m.dispose();
});

Deno.test("attention is causal: changing token t leaves logits before t unchanged and changes t", async () => {
  await initBackend("cpu");
  const m = await createModel(TINY, 4);
  const a = tokens(6, 16, 2), b = Int32Array.from(a);
  b[3] = (a[3] + 5) % 16;
  const la = await tf.tidy(() => m.forward(tf.tensor2d(a, [1, 6], "int32"))).data();
  const lb = await tf.tidy(() => m.forward(tf.tensor2d(b, [1, 6], "int32"))).data();
  const maxDiff = (t: number) =>
    Math.max(...Array.from({ length: 16 }, (_, v) => Math.abs(la[t * 16 + v] - lb[t * 16 + v])));
  for (let t = 0; t < 3; t++) assert.equal(maxDiff(t), 0, `position ${t} must not see position 3`);
  for (let t = 3; t < 6; t++) assert.ok(maxDiff(t) > 1e-4, `position ${t} must see position 3`);
  m.dispose();
});

/** Plain float64 JS re-implementation of the forward pass (independent of tfjs), for one sequence. */
function referenceLoss(cfg: ModelConfig, w: Map<string, { data: Float32Array }>, x: Int32Array, y: Int32Array) {
  const { d_model: d, n_heads: nh, d_ff: H, vocab_size: V, norm_eps: eps } = cfg, hd = d / nh, T = x.length;
  const W = (n: string) => w.get(n)!.data;
  const mm = (a: number[][], b: Float32Array, n: number) =>
    a.map((r) => Array.from({ length: n }, (_, j) => r.reduce((s, v, k) => s + v * b[k * n + j], 0)));
  const norm = (a: number[][], g: Float32Array) =>
    a.map((r) => {
      const s = 1 / Math.sqrt(r.reduce((acc, v) => acc + v * v, 0) / r.length + eps);
      return r.map((v, i) => v * s * g[i]);
    });
  const rope = (v: number[], t: number) => {
    const out = [...v], half = hd / 2;
    for (let j = 0; j < half; j++) {
      const a = t * Math.pow(cfg.rope_base, -(2 * j) / hd), c = Math.cos(a), s = Math.sin(a);
      out[j] = v[j] * c - v[j + half] * s;
      out[j + half] = v[j] * s + v[j + half] * c;
    }
    return out;
  };
  let h = Array.from(x, (t) => Array.from(W("tok_emb").subarray(t * d, t * d + d)));
  for (let l = 0; l < cfg.n_layers; l++) {
    const p = `layers.${l}`, hn = norm(h, W(`${p}.norm1`));
    const q = mm(hn, W(`${p}.attn.wq`), d), k = mm(hn, W(`${p}.attn.wk`), d), v = mm(hn, W(`${p}.attn.wv`), d);
    const o = h.map(() => new Array(d).fill(0));
    for (let head = 0; head < nh; head++) {
      const sl = (r: number[]) => r.slice(head * hd, head * hd + hd);
      for (let i = 0; i < T; i++) {
        const qi = rope(sl(q[i]), i);
        const sc = Array.from(
          { length: i + 1 },
          (_, j) => rope(sl(k[j]), j).reduce((s, kv, c) => s + kv * qi[c], 0) / Math.sqrt(hd),
        );
        const mx = Math.max(...sc), e = sc.map((s) => Math.exp(s - mx)), z = e.reduce((a, b) => a + b, 0);
        for (let j = 0; j <= i; j++) {
          for (let c = 0; c < hd; c++) o[i][head * hd + c] += (e[j] / z) * v[j][head * hd + c];
        }
      }
    }
    const ao = mm(o, W(`${p}.attn.wo`), d);
    h = h.map((r, i) => r.map((val, c) => val + ao[i][c]));
    const up = mm(norm(h, W(`${p}.norm2`)), W(`${p}.ffn.w13`), 2 * H);
    const act = up.map((r) => Array.from({ length: H }, (_, j) => (r[j] / (1 + Math.exp(-r[j]))) * r[H + j]));
    const down = mm(act, W(`${p}.ffn.w2`), d);
    h = h.map((r, i) => r.map((val, c) => val + down[i][c]));
  }
  const hf = norm(h, W("norm_f")), E = W("tok_emb");
  let loss = 0;
  for (let i = 0; i < T; i++) {
    const logits = Array.from({ length: V }, (_, v) => hf[i].reduce((s, a, c) => s + a * E[v * d + c], 0));
    const mx = Math.max(...logits), lse = mx + Math.log(logits.reduce((s, z) => s + Math.exp(z - mx), 0));
    loss += lse - logits[y[i]];
  }
  return loss / T;
}

Deno.test("forward loss equals an independent float64 JS implementation (cpu and wasm)", async () => {
  for (const backend of ["cpu", "wasm"] as const) {
    await initBackend(backend);
    const m = await createModel(TINY, 5);
    const x = tokens(6, 16, 11), y = tokens(6, 16, 12);
    const ref = referenceLoss(TINY, await m.getWeights(), x, y);
    const got = await lossOf(m, tf.tensor2d(x, [1, 6], "int32"), tf.tensor2d(y, [1, 6], "int32"));
    assert.ok(Math.abs(got - ref) / ref < 2e-6, `${backend}: tfjs ${got} vs reference ${ref}`);
    m.dispose();
  }
});

Deno.test("initial loss is about ln(vocab) with a small init", async () => {
  await initBackend("cpu");
  const m = await createModel({ ...TINY, init_std: 0.02 }, 6);
  const l = await lossOf(
    m,
    tf.tensor2d(tokens(18, 16, 1), [3, 6], "int32"),
    tf.tensor2d(tokens(18, 16, 2), [3, 6], "int32"),
  );
  assert.ok(Math.abs(l - Math.log(16)) < 0.05, `loss ${l} vs ln 16 = ${Math.log(16)}`);
  m.dispose();
});

Deno.test("same seed gives identical weights; a different seed gives different ones; gains start at 1", async () => {
  await initBackend("cpu");
  const [a, b, c] = await Promise.all([createModel(TINY, 7), createModel(TINY, 7), createModel(TINY, 8)]);
  const [wa, wb, wc] = await Promise.all([a.getWeights(), b.getWeights(), c.getWeights()]);
  for (const s of a.specs) {
    assert.deepEqual(wa.get(s.name)!.data, wb.get(s.name)!.data, s.name);
    if (s.init === "normal") assert.notDeepEqual(wa.get(s.name)!.data, wc.get(s.name)!.data, s.name);
    else assert.ok(wa.get(s.name)!.data.every((v) => v === 1), `${s.name} starts at ones`);
  }
  // std: init_std for wq, init_std/sqrt(2L) for wo and the FFN down-projection.
  const std = (n: string) => Math.sqrt(wa.get(n)!.data.reduce((s, v) => s + v * v, 0) / wa.get(n)!.data.length);
  const big = await createModel({ ...TINY, d_model: 64, n_heads: 4, d_ff: 128 }, 1);
  const wbig = await big.getWeights();
  const stdBig = (n: string) => Math.sqrt(wbig.get(n)!.data.reduce((s, v) => s + v * v, 0) / wbig.get(n)!.data.length);
  assert.ok(Math.abs(stdBig("layers.0.attn.wq") / 0.3 - 1) < 0.05);
  assert.ok(Math.abs(stdBig("layers.0.attn.wo") / (0.3 / 2) - 1) < 0.05);
  assert.ok(Math.abs(stdBig("layers.1.ffn.w2") / (0.3 / 2) - 1) < 0.05);
  assert.ok(std("tok_emb") > 0.15);
  for (const m of [a, b, c, big]) m.dispose();
});

Deno.test("creating from weights reproduces them; wrong shapes and missing tensors are rejected", async () => {
  await initBackend("cpu");
  const a = await createModel(TINY, 9);
  const w = await a.getWeights();
  const b = await createModel(TINY, 123, { from: { weights: w } });
  for (const [n, t] of await b.getWeights()) assert.deepEqual(t.data, w.get(n)!.data);
  const bad = new Map(w);
  bad.set("norm_f", { shape: [9], data: new Float32Array(9) });
  await assert.rejects(
    createModel(TINY, 1, { from: { weights: bad } }),
    /norm_f has shape \[9\], the model needs \[8\]/,
  );
  const missing = new Map(w);
  missing.delete("layers.1.attn.wk");
  await assert.rejects(createModel(TINY, 1, { from: { weights: missing } }), /lack tensor layers.1.attn.wk/);
  const partial = await createModel(TINY, 9, { from: { weights: missing, partial: true } });
  assert.deepEqual((await partial.getWeights()).get("layers.1.attn.wk")!.data, w.get("layers.1.attn.wk")!.data);
  for (const m of [a, b, partial]) m.dispose();
});

Deno.test("validateModel names field, value and allowed range", async () => {
  assert.deepEqual(validateModel(DEFAULT_MODEL), []);
  assert.deepEqual(validateModel({ ...DEFAULT_MODEL, d_model: 130 }), [
    "model.d_model = 130 must be divisible by model.n_heads = 4",
  ]);
  assert.deepEqual(validateModel({ ...DEFAULT_MODEL, d_model: 12, n_heads: 4 }), [
    "model.d_model / model.n_heads = 12/4 = 3 (head dim) must be even for RoPE",
  ]);
  const e = validateModel({ ...DEFAULT_MODEL, n_layers: 0, seq_len: 1.5, norm_eps: 0, rope_base: 1 });
  assert.ok(e.includes("model.n_layers = 0 must be a positive integer"));
  assert.ok(e.includes("model.seq_len = 1.5 must be a positive integer"));
  assert.ok(e.includes("model.norm_eps = 0 must be in (0, 1)"));
  assert.ok(e.includes("model.rope_base = 1 must be a finite number > 1"));
  // @ts-expect-error: dense has no options besides kind (deno check rejects it; validation too, at run time)
  assert.deepEqual(await validateModelConfig({ ...DEFAULT_MODEL, ffn: { kind: "dense", experts: 4 } }), [
    'model.ffn.experts is not an option of ffn kind "dense" (it has none besides kind)',
  ]);
  await assert.rejects(createModel({ ...DEFAULT_MODEL, d_model: 130 }, 1), /d_model = 130 must be divisible/);
});

Deno.test("loadFfn: unknown or malformed kinds give errors listing the available kinds", async () => {
  assert.ok(availableFfnKinds().includes("dense"));
  assert.ok(!availableFfnKinds().includes("types"));
  await assert.rejects(
    loadFfn("nosuch"),
    /model.ffn.kind = "nosuch" is unknown: there is no lib\/models\/ffn\/nosuch.ts; available: .*dense/,
  );
  await assert.rejects(loadFfn("../x"), /must match/);
  await assert.rejects(loadFfn("types"), /not a valid FFN kind/);
  assert.equal((await loadFfn("dense")).kind, "dense");
});

Deno.test("transformer.ts does not import FFN variants statically", async () => {
  const src = await Deno.readTextFile(new URL("./transformer.ts", import.meta.url));
  const staticImports = [...src.matchAll(/^import[^;]*from\s+"([^"]+)"/gm)].map((m) => m[1]);
  assert.ok(staticImports.length > 0);
  for (const s of staticImports) assert.ok(!/\/ffn\/(?!types\.ts)/.test(s), `static import of ${s}`);
});

/**
 * Central differences along a random unit direction u per parameter, (L(p+hu) - L(p-hu)) / 2h,
 * against the autodiff directional derivative <grad, u>, in float32 with h = 1e-2 (measured
 * relative errors: 3e-5 .. 3e-3).
 */
async function gradientCheck(backend: "cpu" | "wasm") {
  await initBackend(backend);
  const m = await createModel(TINY, 10);
  const x = tf.tensor2d(tokens(12, 16, 3), [2, 6], "int32"), y = tf.tensor2d(tokens(12, 16, 4), [2, 6], "int32");
  const g = await gradsOf(m, x, y);
  const names = [
    "tok_emb",
    "layers.0.attn.wq",
    "layers.1.attn.wk",
    "layers.0.attn.wv",
    "layers.1.attn.wo",
    "layers.0.ffn.w13",
    "layers.1.ffn.w2",
    "layers.0.norm1",
    "layers.1.norm2",
    "norm_f",
  ];
  const h = 1e-2, rng = new Rng(77);
  for (const name of names) {
    const v = m.param(name), p0 = new Float32Array(await v.data());
    const u = rng.normal(new Float32Array(p0.length), 1), un = Math.hypot(...u);
    for (let i = 0; i < u.length; i++) u[i] /= un;
    const at = async (sign: number) => {
      v.assign(tf.tensor(p0.map((p, i) => p + sign * h * u[i]), v.shape));
      return await lossOf(m, x, y);
    };
    const fd = ((await at(1)) - (await at(-1))) / (2 * h);
    v.assign(tf.tensor(p0, v.shape));
    const an = g.get(name)!.reduce((s, gi, i) => s + gi * u[i], 0);
    // Rounding of the float32 loss (~1e-6) / 2h bounds the difference's error by ~1e-4 absolute;
    // every checked derivative is >= 1e-2, and a wrong gradient is off by O(1) relative.
    assert.ok(Math.abs(an) > 5e-3, `${name}: directional derivative ${an} too small to be a meaningful check`);
    assert.ok(
      Math.abs(fd - an) <= 1e-4 + 2e-3 * Math.abs(an),
      `${backend} ${name}: finite difference ${fd} vs autodiff ${an}`,
    );
  }
  tf.dispose([x, y]);
  m.dispose();
}

Deno.test("finite-difference gradient check (cpu)", () => gradientCheck("cpu"));
Deno.test("finite-difference gradient check (wasm, custom kernels)", () => gradientCheck("wasm"));

async function sameAsCpu(other: "wasm" | "webgpu") {
  const cfg = { ...TINY, init_std: 0.05, d_model: 16, seq_len: 8, d_ff: 24 };
  const x = tokens(24, 16, 5), y = tokens(24, 16, 6);
  const run = async (backend: "cpu" | "wasm" | "webgpu") => {
    await initBackend(backend);
    const m = await createModel(cfg, 11);
    const xt = tf.tensor2d(x, [3, 8], "int32"), yt = tf.tensor2d(y, [3, 8], "int32");
    const out = { loss: await lossOf(m, xt, yt), grads: await gradsOf(m, xt, yt) };
    tf.dispose([xt, yt]);
    m.dispose();
    return out;
  };
  const c = await run("cpu"), w = await run(other);
  assert.ok(Math.abs(w.loss - c.loss) / c.loss < 1e-5, `${other} ${w.loss} vs cpu ${c.loss}`);
  for (const [name, gc] of c.grads) {
    const gw = w.grads.get(name)!;
    const scale = Math.max(...gc.map(Math.abs));
    const err = Math.max(...gc.map((v, i) => Math.abs(v - gw[i])));
    assert.ok(err <= 1e-4 * scale, `${name}: max |grad diff| ${err} vs max |grad| ${scale}`);
  }
}

Deno.test("wasm loss and gradients equal cpu's (same init) to ~1e-5", () => sameAsCpu("wasm"));

const gpu = (navigator as { gpu?: GPU }).gpu;
Deno.test({
  name: "webgpu loss and gradients equal cpu's (same init) to ~1e-5",
  ignore: !(gpu && (await gpu.requestAdapter())), // needs a WebGPU adapter (llvmpipe is enough)
  fn: () => sameAsCpu("webgpu"),
});
