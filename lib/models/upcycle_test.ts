import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/mod.ts";
import type { ModelConfig } from "../core/config.ts";
import { createModel, initValues } from "./transformer.ts";
import { loadFfn, paramSpecs } from "./variants.ts";
import { assertClose, TINY_MODEL } from "./moe_test_util.ts";
import { upcycle } from "./upcycle.ts";

const PARENT: ModelConfig = TINY_MODEL;
const child = (ffn: Record<string, unknown>, over: Partial<ModelConfig> = {}): ModelConfig => ({
  ...PARENT,
  ...over,
  ffn: ffn as unknown as ModelConfig["ffn"],
});
const tokens = () => tf.tensor2d(Array.from({ length: 12 }, (_, i) => (i * 7 + 3) % 16), [2, 6], "int32");

async function parentWeights(cfg = PARENT) {
  const m = await createModel(cfg, 1);
  const weights = await m.getWeights();
  const logits = await tf.tidy(() => m.forward(tokens())).data();
  m.dispose();
  return { weights, logits };
}

async function logitsOf(cfg: ModelConfig, weights: Awaited<ReturnType<typeof upcycle>>) {
  const m = await createModel(cfg, 5, { from: { weights } }); // complete weights: no `partial`
  const y = await tf.tidy(() => m.forward(tokens())).data();
  m.dispose();
  return y;
}

Deno.test("upcycle: function-preserving children reproduce the dense parent's logits", async () => {
  await initBackend("cpu");
  const { weights, logits } = await parentWeights();
  const cases = [
    { kind: "topk_moe", experts: 3, top_k: 2, expert_width: 24 }, // copy-upcycling, renormalized top-k
    { kind: "finermoe", g_i: 1, r_i: 1, g_o: 1, r_o: 1, t_i: 1, shared_expert: "none" }, // one expert = dense
    { kind: "dense" },
  ];
  for (const ffn of cases) {
    const cfg = child(ffn);
    const w = await upcycle(cfg, { config: PARENT, weights }, { seed: 5 });
    assertClose(await logitsOf(cfg, w), logits, 1e-5, JSON.stringify(ffn));
    // Non-FFN weights are the parent's, bit for bit.
    for (const name of ["tok_emb", "layers.1.attn.wq", "layers.0.norm2", "norm_f"]) {
      assert.deepEqual(Array.from(w.get(name)!.data), Array.from(weights.get(name)!.data));
    }
  }
});

Deno.test("upcycle: derived FFN weights from the parent, the rest is the child's seeded init", async () => {
  await initBackend("cpu");
  const { weights } = await parentWeights();
  const cfg = child({ kind: "dsmoe", experts: 4 });
  const w = await upcycle(cfg, { config: PARENT, weights }, { seed: 42 });
  const specs = paramSpecs(cfg, await loadFfn("dsmoe"));
  assert.deepEqual([...w.keys()], specs.map((s) => s.name));
  for (const l of [0, 1]) {
    for (const n of ["w13", "w2"]) {
      assert.deepEqual(
        Array.from(w.get(`layers.${l}.ffn.${n}`)!.data),
        Array.from(weights.get(`layers.${l}.ffn.${n}`)!.data),
      );
    }
    const gate = specs.find((s) => s.name === `layers.${l}.ffn.gate`)!;
    assert.deepEqual(Array.from(w.get(gate.name)!.data), Array.from(initValues(gate, 42))); // as a fresh seed-42 model
    assert.deepEqual(w.get(gate.name)!.shape, [8, 4]);
  }
  // The result does not alias the parent's arrays.
  w.get("tok_emb")!.data[0] += 1;
  assert.notEqual(w.get("tok_emb")!.data[0], weights.get("tok_emb")!.data[0]);
  // Split-upcycled top-k MoE: w13/w2 are the dense ones (layout identical), w2 scaled by G = experts.
  const split = await upcycle(child({ kind: "topk_moe", experts: 4, top_k: 1 }), { config: PARENT, weights }, {
    seed: 1,
  });
  assert.deepEqual(Array.from(split.get("layers.0.ffn.w13")!.data), Array.from(weights.get("layers.0.ffn.w13")!.data));
  assertClose(split.get("layers.0.ffn.w2")!.data, weights.get("layers.0.ffn.w2")!.data.map((v) => 4 * v), 0, "w2 · 4");
});

Deno.test("upcycle: a tied parent gives an untied child the transposed embedding as head", async () => {
  await initBackend("cpu");
  const { weights, logits } = await parentWeights();
  const cfg = child({ kind: "dense" }, { tie_embeddings: false });
  const w = await upcycle(cfg, { config: PARENT, weights }, { seed: 3 });
  const emb = weights.get("tok_emb")!.data, head = w.get("head")!;
  assert.deepEqual(head.shape, [8, 16]);
  assert.equal(head.data[3 * 16 + 5], emb[5 * 8 + 3]);
  assertClose(await logitsOf(cfg, w), logits, 1e-5, "untied child of a tied parent");
});

Deno.test("upcycle: clear errors for configs that do not fit and incomplete parents", async () => {
  await initBackend("cpu");
  const { weights } = await parentWeights();
  const parent = { config: PARENT, weights };
  const opts = { seed: 1 };
  await assert.rejects(
    upcycle(child({ kind: "dense" }, { d_model: 16 }), parent, opts),
    /child model\.d_model = 16 differs from the parent's 8/,
  );
  const untiedParent = { ...PARENT, tie_embeddings: false };
  const uw = (await parentWeights(untiedParent)).weights;
  await assert.rejects(
    upcycle(child({ kind: "dense" }), { config: untiedParent, weights: uw }, opts),
    /child ties embeddings .* parent has a separate head/,
  );
  const missing = new Map(weights);
  missing.delete("layers.1.ffn.w2");
  await assert.rejects(
    upcycle(child({ kind: "dsmoe" }), { config: PARENT, weights: missing }, opts),
    /parent's weights lack layers\.1\.ffn\.w2 \[24,8\]/,
  );
  const wrong = new Map(weights);
  wrong.set("norm_f", { shape: [4], data: new Float32Array(4) });
  await assert.rejects(
    upcycle(child({ kind: "dsmoe" }), { config: PARENT, weights: wrong }, opts),
    /parent's norm_f has shape \[4\], its config needs \[8\]/,
  );
  await assert.rejects(
    upcycle(child({ kind: "finedeep" }), parent, opts),
    /ffn kind "finedeep" has no upcycling from a dense FFN/,
  );
  const moeParent = child({ kind: "dsmoe", experts: 4 });
  const moeWeights = await upcycle(moeParent, parent, opts);
  await assert.rejects(
    upcycle(child({ kind: "topk_moe" }), { config: moeParent, weights: moeWeights }, opts),
    /cannot upcycle ffn kind "topk_moe" from a parent of kind "dsmoe"/,
  );
  // Same model.ffn: continued training copies everything.
  const same = await upcycle(moeParent, { config: moeParent, weights: moeWeights }, { seed: 99 });
  for (const [k, v] of moeWeights) assert.deepEqual(Array.from(same.get(k)!.data), Array.from(v.data), k);
  await assert.rejects(
    upcycle(child({ kind: "topk_moe", experts: 5 }), parent, opts),
    /experts = 5 must divide model\.d_ff = 24/,
  );
});
