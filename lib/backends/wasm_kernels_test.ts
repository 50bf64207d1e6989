import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "./mod.ts";
import { Rng } from "../util/rng.ts";

function rand(n: number, seed: number): Float32Array {
  return new Rng(seed).normal(new Float32Array(n), 1);
}

/** Runs f on cpu and on wasm with the same inputs; returns both outputs' values. */
async function both(f: () => tf.Tensor | tf.Tensor[]): Promise<{ cpu: Float32Array[]; wasm: Float32Array[] }> {
  const run = async (name: "cpu" | "wasm") => {
    await initBackend(name);
    const out = tf.tidy(f);
    const arr = Array.isArray(out) ? out : [out];
    const vals = await Promise.all(arr.map(async (t) => new Float32Array(await t.data())));
    tf.dispose(arr);
    return vals;
  };
  return { cpu: await run("cpu"), wasm: await run("wasm") };
}

function assertClose(a: Float32Array, b: Float32Array, rtol: number, what: string) {
  assert.equal(a.length, b.length, `${what}: length`);
  let maxErr = 0, maxRef = 0;
  for (let i = 0; i < a.length; i++) {
    maxErr = Math.max(maxErr, Math.abs(a[i] - b[i]));
    maxRef = Math.max(maxRef, Math.abs(b[i]));
  }
  assert.ok(maxErr <= rtol * Math.max(maxRef, 1e-30), `${what}: max |diff| ${maxErr} > ${rtol} * ${maxRef}`);
}

Deno.test("wasm BatchMatMul override matches cpu for every flag combination and batch layout", async () => {
  const cases: { a: number[]; b: number[] }[] = [
    { a: [5, 7], b: [7, 3] },
    { a: [2, 3, 5, 4], b: [2, 3, 4, 6] }, // batched, equal outer dims
    { a: [6, 5, 4], b: [4, 3] }, // batch x 2-D (folded into one call)
    { a: [5, 4], b: [3, 4, 2] }, // 2-D x batch
  ];
  for (const { a, b } of cases) {
    for (const tA of [false, true]) {
      for (const tB of [false, true]) {
        const sa = [...a], sb = [...b];
        if (tA) [sa[sa.length - 2], sa[sa.length - 1]] = [sa[sa.length - 1], sa[sa.length - 2]];
        if (tB) [sb[sb.length - 2], sb[sb.length - 1]] = [sb[sb.length - 1], sb[sb.length - 2]];
        const av = rand(sa.reduce((x, y) => x * y), 1), bv = rand(sb.reduce((x, y) => x * y), 2);
        const { cpu, wasm } = await both(() => tf.matMul(tf.tensor(av, sa), tf.tensor(bv, sb), tA, tB));
        assertClose(wasm[0], cpu[0], 1e-5, `matMul a=[${sa}] b=[${sb}] tA=${tA} tB=${tB}`);
      }
    }
  }
});

Deno.test("wasm matmul gradients (transposed products) match cpu", async () => {
  const av = rand(3 * 8 * 5, 3), bv = rand(3 * 5 * 4, 4), w = rand(3 * 8 * 4, 5);
  const f = () => {
    const a = tf.tensor(av, [3, 8, 5]), b = tf.tensor(bv, [3, 5, 4]), wt = tf.tensor(w, [3, 8, 4]);
    const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y), wt)));
    return g([a, b]);
  };
  const { cpu, wasm } = await both(f);
  assertClose(wasm[0], cpu[0], 1e-5, "d/da");
  assertClose(wasm[1], cpu[1], 1e-5, "d/db");
});

Deno.test("wasm Slice/SplitV/Unpack replacements return the same values as cpu", async () => {
  const v = rand(2 * 3 * 4 * 5, 7);
  const { cpu, wasm } = await both(() => {
    const x = tf.tensor(v, [2, 3, 4, 5]);
    return [
      tf.slice(x, [1, 0, 1, 2], [1, 3, 2, 3]), // strided
      tf.slice(x, [1, 0, 0, 0], [1, 3, 4, 5]), // contiguous
      ...tf.split(x, [2, 3], -1),
      ...tf.unstack(x, 1),
      ...tf.split(x, [1, 2], 1), // one cut axis in the middle (the SIMD strided copy)
      ...tf.split(tf.cast(x, "int32"), [3, 1, 1], -1), // int32 moves as 4-byte words too
      ...tf.split(tf.cast(x, "bool"), [4, 1], -1), // 1-byte: the odometer path
    ];
  });
  assert.equal(wasm.length, 14);
  for (let i = 0; i < cpu.length; i++) assert.deepEqual(wasm[i], cpu[i], `output ${i}`);
});

Deno.test("wasm Concat replacement equals cpu on every axis, for float32, int32 and bool, and with empty inputs", async () => {
  const a = rand(2 * 3 * 4, 11), b = rand(2 * 3 * 5, 12), c = rand(2 * 3 * 4, 13);
  const { cpu, wasm } = await both(() => {
    const x = tf.tensor(a, [2, 3, 4]), y = tf.tensor(b, [2, 3, 5]), z = tf.tensor(c, [2, 3, 4]);
    return [
      tf.concat([x, y, z], -1),
      tf.concat([x, z], 0),
      tf.concat([x, z], 1),
      tf.concat([tf.cast(x, "int32"), tf.cast(y, "int32")], 2),
      tf.concat([tf.cast(x, "bool"), tf.cast(z, "bool")], 2),
      tf.concat([x, tf.zeros([2, 3, 0]), z], 2),
      tf.concat([tf.zeros([2, 0, 4]), x], 1),
    ];
  });
  assert.equal(wasm.length, 7);
  for (let i = 0; i < cpu.length; i++) assert.deepEqual(wasm[i], cpu[i], `output ${i}`);
});

Deno.test("wasm Cast to bool is x != 0 (the stock kernel truncated to a byte: 0.5 -> false, -2 -> 254)", async () => {
  await initBackend("wasm");
  const x = tf.tensor([0.5, 0, -2, 3.7, -0, NaN, 256]), i = tf.tensor([0, 1, -3, 256], undefined, "int32");
  assert.deepEqual(Array.from(await tf.cast(x, "bool").data()), [1, 0, 1, 1, 0, 1, 1]);
  assert.deepEqual(Array.from(await tf.cast(i, "bool").data()), [0, 1, 1, 1]);
  assert.deepEqual(Array.from(await tf.cast(i, "float32").data()), [0, 1, -3, 256]); // other casts: stock kernel
  tf.dispose([x, i]);
});

Deno.test("wasm GatherV2 replacement equals cpu (rows of float32 and int32, 3-D tables, other axes); bad ids throw", async () => {
  const table = rand(6 * 3 * 2, 14), ids = [5, 0, 0, 3, 2];
  const { cpu, wasm } = await both(() => {
    const t = tf.tensor(table, [6, 3, 2]), i = tf.tensor1d(ids, "int32");
    return [
      tf.gather(t, i),
      tf.gather(tf.cast(t, "int32"), tf.tensor2d([1, 4, 2, 2], [2, 2], "int32")),
      tf.gather(t, tf.tensor1d([2, 0], "int32"), 1), // axis 1: the stock kernel
      tf.gather(tf.reshape(t, [6, 6]), tf.tensor1d([], "int32")),
    ];
  });
  for (let i = 0; i < cpu.length; i++) assert.deepEqual(wasm[i], cpu[i], `output ${i}`);
  await initBackend("wasm");
  const t = tf.tensor2d([1, 2, 3, 4], [2, 2]);
  assert.throws(() => tf.gather(t, tf.tensor1d([0, 2], "int32")), /index value 2 is not in \[0, 1\]/);
  assert.throws(() => tf.gather(t, tf.tensor1d([-1], "int32")), /index value -1 is not in \[0, 1\]/);
  t.dispose();
});

Deno.test("wasm has a correct gather gradient (UnsortedSegmentSum)", async () => {
  const table = rand(6 * 3, 9);
  const ids = new Int32Array([0, 2, 2, 5, 0, 0, 4]);
  const dy = rand(7 * 3, 10);
  const { cpu, wasm } = await both(() => {
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, tf.tensor1d(ids, "int32")), tf.tensor(dy, [7, 3]))));
    return g(tf.tensor(table, [6, 3]));
  });
  // Row 0 receives three contributions, row 1 none: check by hand as well as against cpu.
  const expect0 = [0, 1, 2].map((j) => Math.fround(Math.fround(dy[j] + dy[4 * 3 + j]) + dy[5 * 3 + j]));
  assert.deepEqual(Array.from(wasm[0].slice(0, 3)), expect0);
  assert.deepEqual(Array.from(wasm[0].slice(3, 6)), [0, 0, 0]);
  assertClose(wasm[0], cpu[0], 1e-6, "gather grad");
});

Deno.test("wasm OneHot honours the dtype (stock kernel wrote int32 bits into float32)", async () => {
  await initBackend("wasm");
  const ids = tf.tensor1d([1, 3, -1, 7], "int32");
  const f = tf.oneHot(ids, 4, 1, 0, "float32"), i = tf.oneHot(ids, 4, 5, -2);
  assert.deepEqual(Array.from(await f.data()), [0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(i.dtype, "int32");
  assert.deepEqual(Array.from(await i.data()), [-2, 5, -2, -2, -2, -2, -2, 5, -2, -2, -2, -2, -2, -2, -2, -2]);
  tf.dispose([ids, f, i]);
});

Deno.test("wasm kernels do not leak tensors or heap ids", async () => {
  await initBackend("wasm");
  const a = tf.tensor(rand(4 * 16 * 8, 1), [4, 16, 8]), b = tf.tensor(rand(4 * 8 * 16, 2), [4, 8, 16]);
  const step = () =>
    tf.tidy(() => {
      const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.matMul(x, y, false, false)));
      const [ga, gb] = g([a, b]);
      return tf.add(tf.sum(ga), tf.sum(gb));
    });
  tf.dispose(step());
  const before = tf.memory().numTensors;
  const bytesBefore = tf.memory().numBytes;
  for (let i = 0; i < 3; i++) tf.dispose(step());
  assert.equal(tf.memory().numTensors, before);
  assert.equal(tf.memory().numBytes, bytesBefore);
  tf.dispose([a, b]);
});

Deno.test("wasm Identity shares the data: no heap copy, and either tensor outlives the other", async () => {
  await initBackend("wasm");
  const backend = tf.backend() as unknown as { dataIdMap: { get(d: object): { memoryOffset: number } } };
  const a = tf.tensor(rand(64, 3), [8, 8]);
  const want = Array.from(await a.data());
  const c = tf.clone(a); // runs the Identity kernel, as tfjs does for every tensor a gradient saves
  assert.notEqual(c.dataId, undefined);
  assert.equal(backend.dataIdMap.get(c.dataId).memoryOffset, backend.dataIdMap.get(a.dataId).memoryOffset);
  a.dispose();
  assert.deepEqual(Array.from(await c.data()), want, "the clone keeps the data after the original is disposed");
  const d = tf.clone(c);
  d.dispose();
  assert.deepEqual(Array.from(await c.data()), want, "disposing a clone keeps the original");
  c.dispose();
  // Gradients through ops that save their inputs (Multiply saves both) are unchanged: d(x*x)/dx = 2x.
  const x = tf.tensor1d([1.5, -2, 3]);
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(t, t)))(x);
  assert.deepEqual(Array.from(await g.data()), [3, -4, 6]);
  tf.dispose([x, g]);
});
