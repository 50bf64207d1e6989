import assert from "node:assert/strict";
import { evalBatches, trainBatch } from "./batches.ts";

/** Tokens whose value is their own index, so every window reveals its offset. */
const ramp = (n: number) => Int32Array.from({ length: n }, (_, i) => i);

Deno.test("trainBatch is a pure function of (seed, step)", () => {
  const tokens = ramp(10_000);
  const opts = { batchSize: 8, seqLen: 32 };
  const a = trainBatch(tokens, 7, 3, opts), b = trainBatch(tokens, 7, 3, opts);
  assert.deepEqual(a, b);
  assert.notDeepEqual(trainBatch(tokens, 7, 4, opts).x, a.x);
  assert.notDeepEqual(trainBatch(tokens, 8, 3, opts).x, a.x);
  // steps are independent draws: computing step 3 after step 100 gives the same batch (resume-safe)
  trainBatch(tokens, 7, 100, opts);
  assert.deepEqual(trainBatch(tokens, 7, 3, opts), a);
});

Deno.test("targets are the inputs shifted by one and windows stay inside the split", () => {
  const n = 500, T = 16, B = 4;
  const tokens = ramp(n);
  const offsets = new Set<number>();
  for (let step = 0; step < 300; step++) {
    const { x, y, batchSize, seqLen } = trainBatch(tokens, 1, step, { batchSize: B, seqLen: T });
    assert.equal(batchSize, B);
    assert.equal(seqLen, T);
    assert.equal(x.length, B * T);
    assert.equal(y.length, B * T);
    for (let b = 0; b < B; b++) {
      const o = x[b * T];
      offsets.add(o);
      assert.ok(o >= 0 && o + T <= n - 1, `window at ${o} leaves the split`);
      for (let t = 0; t < T; t++) {
        assert.equal(x[b * T + t], o + t);
        assert.equal(y[b * T + t], o + t + 1);
      }
    }
  }
  // 1200 draws over 484 possible offsets reach both ends of the range
  assert.ok(
    Math.min(...offsets) <= 5 && Math.max(...offsets) >= n - T - 1 - 5,
    `offsets ${Math.min(...offsets)}..${Math.max(...offsets)}`,
  );
});

Deno.test("a split of exactly seq_len + 1 tokens has one window; Uint8Array input works", () => {
  const tokens = new Uint8Array([10, 20, 30, 40, 50]);
  const { x, y } = trainBatch(tokens, 0, 0, { batchSize: 3, seqLen: 4 });
  assert.deepEqual([...x], [10, 20, 30, 40, 10, 20, 30, 40, 10, 20, 30, 40]);
  assert.deepEqual([...y], [20, 30, 40, 50, 20, 30, 40, 50, 20, 30, 40, 50]);
});

Deno.test("evalBatches are fixed and evenly spaced from the start to the end of the split", () => {
  const n = 1000, T = 10;
  const tokens = ramp(n);
  const a = evalBatches(tokens, 3, { batchSize: 4, seqLen: T });
  assert.deepEqual(evalBatches(tokens, 3, { batchSize: 4, seqLen: T }), a);
  assert.equal(a.length, 3);
  const offsets = a.flatMap((b) => Array.from({ length: b.batchSize }, (_, i) => b.x[i * T]));
  assert.equal(offsets.length, 12);
  assert.equal(offsets[0], 0);
  assert.equal(offsets[11], n - T - 1); // the last full window
  for (let i = 1; i < offsets.length; i++) assert.ok(offsets[i] > offsets[i - 1]);
  for (const b of a) for (let i = 0; i < b.x.length; i++) assert.equal(b.y[i], b.x[i] + 1);
  const one = evalBatches(tokens, 1, { batchSize: 1, seqLen: T });
  assert.equal(one[0].x[0], 0);
});

Deno.test("a split shorter than seq_len + 1 is a clear error", () => {
  assert.throws(
    () => trainBatch(ramp(8), 0, 0, { batchSize: 1, seqLen: 8 }),
    /training split has 8 tokens, fewer than one sequence of seq_len \+ 1 = 9/,
  );
  assert.throws(
    () => evalBatches(new Uint8Array(3), 1, { batchSize: 2, seqLen: 128 }),
    /validation split has 3 tokens, fewer than one sequence of seq_len \+ 1 = 129.*max_tokens/,
  );
});
