import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./mod.ts";
import { finedeepBlock } from "./fused.ts";
import { Rng } from "../util/rng.ts";

// The fused block against the naive per-expert form (values and every gradient) is in
// lib/models/ffn/finedeep_test.ts; here: determinism, leaks, and the 2-D dispatch grid.

const gpu = (navigator as { gpu?: GPU }).gpu;
const hasAdapter = gpu ? (await gpu.requestAdapter()) !== null : false; // llvmpipe is enough

interface Block {
  x: number[];
  h: number[];
  subs: { w13: number[]; w2: number[]; router: number[] }[];
  w: number[];
}

function randomBlock(N: number, D: number, M: number, K: number, E: number, seed: number): Block {
  const r = new Rng(seed), v = (n: number, s: number) => Array.from(r.normal(new Float32Array(n), s));
  const H = K * E;
  return {
    x: v(N * D, 1),
    h: v(N * D, 1),
    subs: Array.from({ length: M }, () => ({ w13: v(D * 2 * H, 0.3), w2: v(H * D, 0.3), router: v(K * D, 0.5) })),
    w: v(N * D, 1),
  };
}

/** Output and gradients (x, h, then w13, w2, router per sub-layer) of sum(block * w), as arrays. */
async function run(b: Block, N: number, D: number, K: number): Promise<Float32Array[]> {
  const H = b.subs[0].w2.length / D;
  const x = tf.tensor2d(b.x, [N, D]), h = tf.tensor2d(b.h, [N, D]), w = tf.tensor2d(b.w, [N, D]);
  const ws = b.subs.flatMap((
    s,
  ) => [tf.tensor2d(s.w13, [D, 2 * H]), tf.tensor2d(s.w2, [H, D]), tf.tensor2d(s.router, [K, D])]);
  const subsOf = (t: tf.Tensor[]) =>
    Array.from({ length: t.length / 3 }, (_, m) => ({ w13: t[3 * m], w2: t[3 * m + 1], router: t[3 * m + 2] }));
  const f = (...t: tf.Tensor[]) => {
    const y = finedeepBlock(t[0] as tf.Tensor2D, t[1] as tf.Tensor2D, subsOf(t.slice(2)), { k: K, eps: 1e-5 });
    if (!y) throw new Error(`no fused Finedeep kernel on ${tf.getBackend()}`);
    return tf.sum(tf.mul(y, w));
  };
  const { value, grads } = tf.valueAndGrads(f)([x, h, ...ws]);
  const out = [await value.data(), ...await Promise.all(grads.map((g) => g.data()))] as Float32Array[];
  tf.dispose([x, h, w, value, ...ws, ...grads]);
  return out;
}

Deno.test({
  name: "webgpu FlFinedeep: the same bits twice, and no tensor or buffer left behind",
  ignore: !hasAdapter,
  fn: async () => {
    await initBackend("webgpu");
    const [N, D, M, K, E] = [70, 12, 3, 3, 5], b = randomBlock(N, D, M, K, E, 3);
    await run(b, N, D, K); // pipelines compiled, buffer pool warm
    const before = { tensors: tf.memory().numTensors, ids: tf.engine().backend.numDataIds() };
    const [a, c] = [await run(b, N, D, K), await run(b, N, D, K)];
    assert.deepEqual(tf.memory().numTensors, before.tensors, "tensors");
    assert.equal(tf.engine().backend.numDataIds(), before.ids, "backend data ids");
    assert.equal(a.length, 3 + 3 * M); // value, dx, dh, then three per sub-layer
    for (const [i, v] of a.entries()) {
      assert.ok(v.some((t) => t !== 0), `output ${i} is not all zeros`);
      assert.deepEqual(new Uint32Array(v.buffer), new Uint32Array(c[i].buffer), `output ${i}: same bits`);
    }
    await initBackend("cpu");
  },
});

Deno.test({
  name: "webgpu FlFinedeep past 65535 workgroups in one dimension (2-D grid) equals wasm's",
  ignore: !hasAdapter,
  fn: async () => {
    // gated has N * K * E = 4100 * 1024 elements: 65,600 workgroups of 64 threads.
    const [N, D, M, K, E] = [4100, 8, 2, 2, 512], b = randomBlock(N, D, M, K, E, 5);
    await initBackend("wasm");
    const want = await run(b, N, D, K);
    await initBackend("webgpu");
    const got = await run(b, N, D, K);
    const names = [
      "value",
      "dx",
      "dh",
      ...Array.from({ length: M }, (_, m) => [`dw13_${m}`, `dw2_${m}`, `dr_${m}`]).flat(),
    ];
    for (const [i, n] of names.entries()) {
      let diff = 0, scale = 0;
      for (let j = 0; j < want[i].length; j++) {
        diff = Math.max(diff, Math.abs(got[i][j] - want[i][j]));
        scale = Math.max(scale, Math.abs(want[i][j]));
      }
      assert.ok(scale > 0 && diff < 1e-4 * scale, `${n}: max |diff| ${diff} (scale ${scale})`);
    }
    await initBackend("cpu");
  },
});
