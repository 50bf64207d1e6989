import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/mod.ts";
import { loadBlas, nativeAvailability, setNativeThreads } from "../backends/native/mod.ts";
import { matmul } from "../backends/ops.ts";
import { DEFAULT_TRAIN, type ModelConfig } from "../core/config.ts";
import type { Batch } from "../data/batches.ts";
import { AdamW } from "../train/optim.ts";
import { trainStep } from "../train/step.ts";
import { Rng } from "../util/rng.ts";
import { expertRunner, sparseMixture } from "./moe.ts";
import { TINY_MODEL } from "./moe_test_util.ts";
import { setSparseTrainOp, sparseMixtureTrain, sparseTrainActive } from "./sparse_train.ts";
import { createModel } from "./transformer.ts";
import { assertSameBits } from "../util/testing.ts";

const avail = nativeAvailability();
if (!avail.ok) console.log(`sparse training op tests skipped: ${avail.why}. To run them: ${avail.fix}`);

const rand = (r: Rng, n: number, std: number) => r.normal(new Float32Array(n), std);
const range = (a: number, n: number) => Array.from({ length: n }, (_, i) => a + i);

/** Asserts the same float32 bits (reports the first difference). */
/**
 * coef [N, E] of S slices: per token and slice, `k` experts of the slice (never `empty`), weights in (0, 1);
 * tokens route nothing into slice `emptySlice`.
 */
function routing(r: Rng, N: number, E: number, S: number, k: number, empty: number, emptySlice = -1): Float32Array {
  const c = new Float32Array(N * E), per = E / S;
  for (let t = 0; t < N; t++) {
    for (let s = 0; s < S; s++) {
      if (s === emptySlice) continue;
      const pool = range(s * per, per).filter((e) => e !== empty);
      for (let j = 0; j < k && pool.length; j++) {
        c[t * E + pool.splice(r.int(pool.length), 1)[0]] = 0.05 + 0.9 * r.next();
      }
    }
  }
  return c;
}

/** Today's tfjs form (finermoe.ts / topk_moe.ts `train_compute = sparse`): sparseMixture per slice, concat. */
function tfjsForm(x: tf.Tensor2D, coef: tf.Tensor2D, w13: tf.Tensor, w2: tf.Tensor, S: number): tf.Tensor2D {
  const E = coef.shape[1], per = E / S, O = w2.shape[1] as number, values = coef.dataSync();
  const run = expertRunner(w13, w2, E, { split: true });
  const outs = range(0, S).map((s) => sparseMixture(x, coef, values, run, { outDim: O, experts: range(s * per, per) }));
  return outs.length === 1 ? outs[0] : tf.concat(outs, 1);
}

Deno.test({
  name: "OpenBLAS sgemm: the same bits whatever the leading dimensions (the op reads weights in place)",
  ignore: !avail.ok,
  async fn() {
    await initBackend("native");
    const blas = loadBlas(), r = new Rng(3);
    for (const [m, n, k] of [[1, 7, 13], [9, 48, 128], [37, 5, 64], [130, 48, 128], [48, 128, 261], [3, 1, 1]]) {
      for (const [tA, tB] of [[false, false], [false, true], [true, false]]) {
        const pa = 5, pb = 11, pc = 3; // padding of each leading dimension
        const ar = tA ? k : m, ac = tA ? m : k, br = tB ? n : k, bc = tB ? k : n;
        const a = rand(r, ar * ac, 1), b = rand(r, br * bc, 1);
        const ap = new Float32Array(ar * (ac + pa) + 1), bp = new Float32Array(br * (bc + pb) + 1);
        for (let i = 0; i < ar; i++) ap.set(a.subarray(i * ac, (i + 1) * ac), 1 + i * (ac + pa));
        for (let i = 0; i < br; i++) bp.set(b.subarray(i * bc, (i + 1) * bc), 1 + i * (bc + pb));
        const c = new Float32Array(m * n), cp = new Float32Array(m * (n + pc) + 1);
        blas.sgemm(tA, tB, m, n, k, a, ac, b, bc, c, n);
        blas.sgemm(tA, tB, m, n, k, ap.subarray(1), ac + pa, bp.subarray(1), bc + pb, cp.subarray(1), n + pc);
        const got = range(0, m).flatMap((i) => [...cp.subarray(1 + i * (n + pc), 1 + i * (n + pc) + n)]);
        assertSameBits(got, c, `sgemm ${tA ? "T" : "N"}${tB ? "T" : "N"} ${m}x${n}x${k}`);
      }
    }
  },
});

Deno.test({
  name:
    "sparseMixtureTrain: output and every gradient bit-identical to the tfjs sparse form (odd sizes, empty expert/slice)",
  ignore: !avail.ok,
  async fn() {
    await initBackend("native");
    const r = new Rng(11);
    // [N, D, E, W, O, S, k per slice, never-chosen expert, slice without tokens]
    const cases = [
      [9, 13, 6, 7, 5, 2, 1, 1, -1],
      [33, 24, 8, 6, 11, 1, 3, 2, -1],
      [17, 16, 8, 5, 8, 4, 1, 5, -1],
      [21, 10, 6, 9, 7, 2, 2, 0, 1],
      [1, 17, 4, 9, 17, 1, 1, 3, -1],
      [64, 32, 16, 12, 16, 2, 1, 7, -1],
      [512, 64, 4, 64, 64, 1, 2, 3, -1], // sgemms large enough for OpenBLAS to use threads
      [1024, 256, 32, 96, 128, 2, 1, 9, -1], // the d=256 bench model's FineRMoE layer (batched sgemms in parallel)
    ];
    // 1 and 2 threads: OpenBLAS splits the rows/columns of C over threads, never k, so the op's single-threaded
    // sgemms in parallel give the bits of the tfjs form's threaded ones.
    for (
      const [threads, [N, D, E, W, O, S, k, empty, emptySlice]] of [1, 2].flatMap((n) =>
        cases.map((c) => [n, c] as const)
      )
    ) {
      setNativeThreads(threads);
      const what = `${threads} threads [${N}, ${D}] E ${E} W ${W} O ${O} S ${S} k ${k}`;
      const x = tf.tensor2d(rand(r, N * D, 1), [N, D]);
      const coef = tf.tensor2d(routing(r, N, E, S, k, empty, emptySlice), [N, E]);
      const w13 = tf.tensor2d(rand(r, D * 2 * E * W, 0.3), [D, 2 * E * W]);
      const w2 = tf.tensor2d(rand(r, E * W * O, 0.3), [E * W, O]);
      // x and coef have other uses before and after the mixture: their gradients are sums the tape orders.
      const p1 = tf.tensor2d(rand(r, D * 3, 1), [D, 3]), p2 = tf.tensor2d(rand(r, D * 2, 1), [D, 2]);
      const ry = tf.tensor2d(rand(r, N * S * O, 1), [N, S * O]), rc = tf.tensor2d(rand(r, N * E, 1), [N, E]);
      const loss = (form: typeof tfjsForm) => (xs: tf.Tensor, cs: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => {
        const before = tf.sum(tf.square(matmul(xs, p1))), cu = tf.sum(tf.mul(cs, rc));
        const y = form(xs as tf.Tensor2D, cs as tf.Tensor2D, a, b, S);
        const after = tf.sum(tf.sin(matmul(xs, p2)));
        return tf.addN([tf.sum(tf.mul(y, ry)), before, after, cu]) as tf.Scalar;
      };
      const ours = (xs: tf.Tensor2D, cs: tf.Tensor2D, a: tf.Tensor, b: tf.Tensor, s: number) =>
        sparseMixtureTrain(xs, cs, { values: cs.dataSync(), w13: a, w2: b, slices: s });
      assertSameBits(ours(x, coef, w13, w2, S).dataSync(), tfjsForm(x, coef, w13, w2, S).dataSync(), `${what} output`);
      const gWant = tf.grads(loss(tfjsForm))([x, coef, w13, w2]);
      const before = tf.memory().numTensors;
      const gGot = tf.grads(loss(ours))([x, coef, w13, w2]);
      assert.equal(tf.memory().numTensors, before + 4, `${what}: only the 4 gradients stay`);
      ["x", "coef", "w13", "w2"].forEach((n, i) =>
        assertSameBits(gGot[i].dataSync(), gWant[i].dataSync(), `${what} d${n}`)
      );
      // The never-chosen expert's weights get exactly zero gradient.
      const g13 = gGot[2].dataSync();
      for (let d = 0; d < D; d++) for (let j = 0; j < W; j++) assert.equal(g13[d * 2 * E * W + empty * W + j], 0);
      tf.dispose([x, coef, w13, w2, p1, p2, ry, rc, ...gWant, ...gGot]);
    }
    setNativeThreads(1);
  },
});

/** Random token batches of the tiny model. */
function batches(cfg: ModelConfig, n: number, B: number): Batch[] {
  const r = new Rng(5), T = cfg.seq_len;
  return Array.from({ length: n }, () => {
    const ids = Int32Array.from({ length: B * (T + 1) }, () => r.int(cfg.vocab_size));
    const x = new Int32Array(B * T), y = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      x.set(ids.subarray(b * (T + 1), b * (T + 1) + T), b * T);
      y.set(ids.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
    }
    return { x, y, batchSize: B, seqLen: T } as Batch;
  });
}

Deno.test({
  name: "FineRMoE and top-k MoE train_compute=sparse: the same loss and weight bits with and without the fused op",
  ignore: !avail.ok,
  async fn() {
    await initBackend("native");
    assert.ok(sparseTrainActive(), "on by default on the native backend");
    const ffns = [
      { kind: "finermoe", g_i: 4, g_o: 2, r_o: 2, t_i: 1, train_compute: "sparse" },
      { kind: "finermoe", g_i: 3, r_i: 2, g_o: 4, r_o: 1, t_i: 2, shared_expert: "none", train_compute: "sparse" },
      { kind: "topk_moe", experts: 6, top_k: 2, train_compute: "sparse" },
    ];
    for (const ffn of ffns) {
      const cfg = { ...TINY_MODEL, d_ff: 24, ffn } as ModelConfig, data = batches(cfg, 3, 3);
      const train = async (fused: boolean) => {
        setSparseTrainOp(fused);
        const model = await createModel(cfg, 7), opt = new AdamW(model.specs, DEFAULT_TRAIN);
        const losses: number[] = [], rng = new Rng(1);
        for (const b of data) {
          losses.push((await trainStep(model, opt, b, { lr: 3e-2, rng, gradClip: 1, logStats: false })).loss);
        }
        const weights = model.specs.map((s) => model.param(s.name).dataSync());
        model.dispose();
        return { losses, weights };
      };
      const fused = await train(true), tfjs = await train(false);
      setSparseTrainOp(null);
      assertSameBits(fused.losses, tfjs.losses, `${ffn.kind} losses`);
      fused.weights.forEach((w, i) => assertSameBits(w, tfjs.weights[i], `${ffn.kind} weight ${i} after the steps`));
      assert.ok(fused.losses[2] !== fused.losses[0], "the model trained");
    }
  },
});
