/**
 * kernels/moe_prog.h `fl_moe_prog` (the sparse training op's passes as one parallel region): every record kind
 * against a reference (sgemm against the BLAS's own call, the rest against float32 loops in JS), in one program
 * with barriers, for 1 and 2 threads. lib/models/sparse_train_test.ts checks the whole op bit for bit.
 */
import assert from "node:assert/strict";
import { initBackend } from "../mod.ts";
import { Rng } from "../../util/rng.ts";
import { loadBlas, loadKernels, nativeAvailability, setNativeThreads } from "./mod.ts";

const avail = nativeAvailability();
if (!avail.ok) console.log(`fl_moe_prog tests skipped: ${avail.why}. To run them: ${avail.fix}`);

type Arr = Float32Array | Int32Array;
const f = Math.fround;

/** Records of fl_moe_prog (24 int32 each) over a table of arrays. */
function program() {
  const recs: number[] = [], arrays: Arr[] = [];
  const slot = (a: Arr) => (arrays.includes(a) ? arrays : (arrays.push(a), arrays)).indexOf(a);
  let wall = false;
  return {
    op(kind: number, ints: number[], refs: [Arr, number][]) {
      const q = new Array(24).fill(0);
      q[0] = kind;
      q[1] = wall ? 1 : 0;
      wall = false;
      ints.forEach((v, i) => q[2 + i] = v);
      refs.forEach(([a, off], i) => (q[12 + 2 * i] = slot(a), q[13 + 2 * i] = off));
      recs.push(...q);
    },
    barrier: () => void (wall = true),
    run() {
      const table = BigUint64Array.from(arrays, (a) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(a))));
      return loadKernels().k.fl_moe_prog(Int32Array.from(recs), table, recs.length / 24);
    },
  };
}

Deno.test({
  name:
    "fl_moe_prog: sgemm, gather, SwiGLU, weighting and scatters in one region equal their references (1, 2 threads)",
  ignore: !avail.ok,
  async fn() {
    await initBackend("native");
    const blas = loadBlas(), r = new Rng(11), rand = (n: number) => r.normal(new Float32Array(n), 1);
    const R = 37, D = 20, W = 48, N = 50, w = 70, off = 9;
    const rows = Int32Array.from({ length: R }, () => r.int(N));
    const before = loadKernels().k.fl_get_threads() as number;
    const x = rand(N * D), wg = rand(D * W), c = rand(R), dy = rand(N * w), y0 = rand(N * w);
    try {
      for (const threads of [1, 2]) {
        setNativeThreads(threads);
        const xs = new Float32Array(R * D), a = new Float32Array(R * W), sig = new Float32Array(R * W);
        const h = new Float32Array(R * W), y = y0.slice(), dO = new Float32Array(R * W), dc = new Float32Array(R);
        const da = new Float32Array(R * W), db = new Float32Array(R * W), z = y0.slice(), b = rand(R * W);
        const p = program();
        p.op(1, [R, D, 0, D], [[x, 0], [rows, 0], [xs, 0]]); // gather
        p.barrier();
        p.op(0, [0, 0, R, W, D, D, W, W], [[xs, 0], [wg, 0], [a, 0]]); // a = xs wg
        p.barrier();
        p.op(2, [R * W], [[a, 0], [b, 0], [sig, 0], [h, 0]]);
        p.barrier();
        p.op(4, [R, w, off, W], [[y, 0], [h, 0], [c, 0], [rows, 0]]); // y[rows, off..] += h·c
        p.op(5, [R, w, off, W], [[dy, 0], [rows, 0], [c, 0], [h, 0], [dO, 0], [dc, 0]]);
        p.barrier();
        p.op(3, [R * W], [[a, 0], [b, 0], [sig, 0], [dO, 0], [da, 0], [db, 0]]);
        p.barrier();
        p.op(6, [R, w, off, W], [[z, 0], [da, 0], [db, 0], [rows, 0]]); // z[rows, off..] += da + db
        assert.equal(p.run(), 0);

        const xsRef = new Float32Array(R * D), aRef = new Float32Array(R * W);
        rows.forEach((t, i) => xsRef.set(x.subarray(t * D, (t + 1) * D), i * D));
        assert.deepEqual(xs, xsRef, "gather");
        blas.sgemm(false, false, R, W, D, xsRef, D, wg, W, aRef, W);
        assert.deepEqual(a, aRef, "sgemm");
        const yRef = y0.slice(), zRef = y0.slice();
        for (let i = 0; i < R * W; i++) {
          assert.ok(Math.abs(sig[i] - 1 / (1 + Math.exp(-a[i]))) <= 1e-7, `sigmoid ${i}`);
          assert.equal(h[i], f(f(a[i] * sig[i]) * b[i]), `h ${i}`);
        }
        for (let i = 0; i < R; i++) {
          let acc = 0;
          for (let j = 0; j < W; j++) {
            const t = rows[i] * w + off + j, k = i * W + j;
            yRef[t] = f(yRef[t] + f(h[k] * c[i]));
            assert.equal(dO[k], f(dy[t] * c[i]), `dO ${k}`);
            acc += f(dy[t] * h[k]);
            const s = sig[k], ds = f(dO[k] * b[k]), dsig = f(ds * a[k]);
            assert.equal(db[k], f(dO[k] * f(a[k] * s)), `db ${k}`);
            assert.equal(da[k], f(f(ds * s) + f(dsig * f(s * f(1 - s)))), `da ${k}`);
            zRef[t] = f(zRef[t] + f(da[k] + db[k]));
          }
          assert.equal(dc[i], f(acc), `dc ${i}`);
        }
        assert.deepEqual(y, yRef, "weighted scatter (repeated rows add in row order)");
        assert.deepEqual(z, zRef, "scatter of a sum");
      }
    } finally {
      setNativeThreads(before);
    }
  },
});
