import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { readFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../mod.ts";
import { Rng } from "../../util/rng.ts";
import { heapOffset, SIMD_ABI, simdKernels, type WasmHeapBackend } from "./mod.ts";
import {
  KERNELS_COMPILER,
  KERNELS_SOURCE_SHA256,
  KERNELS_WASM_BASE64,
  KERNELS_WASM_SHA256,
  KERNELS_WASM_SHARED_BASE64,
  KERNELS_WASM_SHARED_SHA256,
} from "./kernels_wasm.ts";
import {
  buildWasmKernels,
  compilerVersion,
  sections,
  sha256,
  unsafeParts,
  WASM_KERNELS_MODULE,
  wasmClang,
  wasmSourcesSha256,
} from "./build.ts";

const wasmBytes = () => Uint8Array.from(Buffer.from(KERNELS_WASM_BASE64, "base64"));
const sharedBytes = () => Uint8Array.from(Buffer.from(KERNELS_WASM_SHARED_BASE64, "base64"));

Deno.test("wasm SIMD kernels: kernels_wasm.ts was built from the current kernels.c and headers (else: deno task build:wasm)", () => {
  assert.equal(wasmSourcesSha256(), KERNELS_SOURCE_SHA256);
  assert.equal(sha256(wasmBytes()), KERNELS_WASM_SHA256);
  assert.equal(sha256(sharedBytes()), KERNELS_WASM_SHARED_SHA256);
});

/** The bytes of each top-level section but the import section (id 2). */
const sectionsBesidesImports = (bin: Uint8Array) =>
  sections(bin).filter((x) => x.id !== 2).map((x) => Buffer.from(bin.subarray(x.start, x.end)).toString("hex"));

Deno.test("wasm SIMD kernels: the shared-memory variant holds the same code and takes only a shared memory", () => {
  assert.deepEqual(sectionsBesidesImports(sharedBytes()), sectionsBesidesImports(wasmBytes()));
  assert.deepEqual(unsafeParts(sharedBytes(), ""), []);
  const shared = new WebAssembly.Memory({ initial: 2, maximum: 65536, shared: true });
  const plain = new WebAssembly.Memory({ initial: 2, maximum: 65536 });
  const inst = (bin: Uint8Array<ArrayBuffer>, memory: WebAssembly.Memory) =>
    new WebAssembly.Instance(new WebAssembly.Module(bin), { env: { memory } });
  assert.equal((inst(sharedBytes(), shared).exports.abi_version as () => number)(), SIMD_ABI);
  assert.equal((inst(wasmBytes(), plain).exports.abi_version as () => number)(), SIMD_ABI);
  assert.throws(() => inst(wasmBytes(), shared), WebAssembly.LinkError);
  assert.throws(() => inst(sharedBytes(), plain), WebAssembly.LinkError);
});

Deno.test("wasm SIMD kernels: the binary imports only the memory and has no data or start section", () => {
  assert.deepEqual(unsafeParts(wasmBytes(), ""), []);
  // The check itself: a module with a data section or another import is refused.
  const withData = Uint8Array.from([0, 97, 115, 109, 1, 0, 0, 0, 5, 3, 1, 0, 1, 11, 7, 1, 0, 65, 0, 11, 1, 42]);
  assert.match(unsafeParts(withData, "").join(), /data section/);
  assert.match(unsafeParts(wasmBytes(), "  global.get 0").join(), /stack pointer/);
});

// Only the compiler that built the committed binary reproduces it byte for byte.
const clang = wasmClang();
const sameClang = clang !== null && compilerVersion(clang) === KERNELS_COMPILER;

Deno.test({
  name: "wasm SIMD kernels: a rebuild with clang gives the committed kernels_wasm.ts",
  ignore: !sameClang,
  fn() {
    assert.equal(buildWasmKernels().text, readFileSync(WASM_KERNELS_MODULE, "utf8"));
  },
});

// ---- the kernels against float64 references, inside guard regions ----------------------------------

const sig = (x: number) => 1 / (1 + Math.exp(-x));

/** Float32 buffers carved out of one wasm tensor, each between guard words that must survive. */
class Heap {
  private parts: { at: number; n: number }[] = [];
  private all: Float32Array;
  private t: tf.Tensor;
  private base: number;
  constructor(private sizes: Record<string, number>, rng: Rng) {
    const G = 7; // guard floats around each buffer (odd, so buffers are not 16-byte aligned)
    let n = G;
    for (const s of Object.values(sizes)) {
      this.parts.push({ at: n, n: s });
      n += s + G;
    }
    this.all = rng.normal(new Float32Array(n), 1);
    this.t = tf.tensor1d(this.all);
    this.base = heapOffset(tf.backend() as unknown as WasmHeapBackend, this.t);
  }
  ptr(name: string): number {
    return this.base + 4 * this.parts[Object.keys(this.sizes).indexOf(name)].at;
  }
  init(name: string): Float32Array {
    const p = this.parts[Object.keys(this.sizes).indexOf(name)];
    return this.all.subarray(p.at, p.at + p.n);
  }
  /** Sets a buffer's contents before a kernel runs (in the heap and in the expected state). */
  write(name: string, values: Float32Array) {
    const p = this.parts[Object.keys(this.sizes).indexOf(name)];
    this.all.set(values, p.at);
    const be = tf.backend() as unknown as { typedArrayFromHeap(t: unknown): Float32Array };
    be.typedArrayFromHeap(this.t).set(values, p.at);
  }
  /** The buffers after the kernel ran; asserts every word outside `written` is unchanged. */
  read(written: string[]): Record<string, Float32Array> {
    const now = this.t.dataSync() as Float32Array, out: Record<string, Float32Array> = {};
    const names = Object.keys(this.sizes);
    const touched = new Uint8Array(now.length);
    const nowBits = new Uint32Array(now.buffer, now.byteOffset, now.length);
    const allBits = new Uint32Array(this.all.buffer, this.all.byteOffset, this.all.length);
    for (const [i, p] of this.parts.entries()) {
      out[names[i]] = now.slice(p.at, p.at + p.n);
      if (written.includes(names[i])) touched.fill(1, p.at, p.at + p.n);
    }
    for (let i = 0; i < now.length; i++) {
      if (!touched[i] && nowBits[i] !== allBits[i]) { // bits: the int32 words of ids may read as NaN
        assert.fail(`word ${i} outside the outputs [${written}] changed (buffers ${names.join(", ")})`);
      }
    }
    return out;
  }
  dispose() {
    this.t.dispose();
  }
}

function close(got: Float32Array, want: ArrayLike<number>, what: string, tol = 2e-6) {
  assert.equal(got.length, want.length, what);
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i] - want[i]) <= tol * Math.max(scale, 1))) {
      assert.fail(`${what}[${i}]: ${got[i]} vs ${want[i]} (scale ${scale})`);
    }
  }
}

Deno.test("wasm SIMD kernels: every kernel matches a float64 reference on odd sizes and writes only its outputs", async () => {
  await initBackend("wasm");
  const k = simdKernels(tf.backend() as unknown as WasmHeapBackend);
  for (const [N, K, E, D] of [[1, 1, 1, 1], [5, 3, 7, 13], [9, 4, 24, 128]]) {
    const H = K * E, rng = new Rng(N * 131 + E), where = `N=${N} K=${K} E=${E} D=${D}`;
    // fd_u, fd_u_bwd
    let h = new Heap({ w2: H * D, r: K * D, u: H, du: H, dw2: H * D, dr: K * D }, rng);
    const w2 = h.init("w2"), r = h.init("r"), du = h.init("du"), dw2 = Float32Array.from(h.init("dw2"));
    k.fd_u(h.ptr("w2"), h.ptr("r"), h.ptr("u"), K, E, D);
    k.fd_u_bwd(h.ptr("du"), h.ptr("w2"), h.ptr("r"), h.ptr("dw2"), h.ptr("dr"), K, E, D);
    let o = h.read(["u", "dw2", "dr"]);
    const u = new Float64Array(H), dr = new Float64Array(K * D), dw2w = Float64Array.from(dw2);
    for (let kk = 0; kk < K; kk++) {
      for (let e = 0; e < E; e++) {
        const row = kk * E + e;
        for (let j = 0; j < D; j++) {
          u[row] += w2[row * D + j] * r[kk * D + j];
          dw2w[row * D + j] += du[row] * r[kk * D + j];
          dr[kk * D + j] += du[row] * w2[row * D + j];
        }
      }
    }
    close(o.u, u, `${where} fd_u`);
    close(o.dw2, dw2w, `${where} fd_u_bwd dw2`);
    close(o.dr, dr, `${where} fd_u_bwd dr`);
    h.dispose();

    // swiglu_gate_fwd, swiglu_gate_bwd
    h = new Heap(
      { ab: N * 2 * H, u: H, gated: N * H, g: N * K, p: H, dg: N * H, dab: N * 2 * H, du: H, s: 3 * H },
      rng,
    );
    const ab = h.init("ab"), uu = h.init("u"), dg = h.init("dg");
    k.swiglu_gate_fwd(h.ptr("ab"), h.ptr("u"), h.ptr("gated"), h.ptr("g"), h.ptr("p"), N, K, E);
    o = h.read(["gated", "g", "p"]);
    const g = o.g;
    const gated = new Float64Array(N * H), gw = new Float64Array(N * K), dab = new Float64Array(N * 2 * H);
    const duw = new Float64Array(H);
    for (let n = 0; n < N; n++) {
      const a = (j: number) => ab[n * 2 * H + j], b = (j: number) => ab[n * 2 * H + H + j];
      const prod = Array.from({ length: H }, (_, j) => a(j) * sig(a(j)) * b(j));
      for (let kk = 0; kk < K; kk++) {
        let z = 0, s = 0;
        for (let e = 0; e < E; e++) z += prod[kk * E + e] * uu[kk * E + e];
        gw[n * K + kk] = sig(z);
        const gk = g[n * K + kk]; // the backward reads the forward's float32 gate, as in training
        for (let e = 0; e < E; e++) {
          gated[n * H + kk * E + e] = prod[kk * E + e] * sig(z);
          s += dg[n * H + kk * E + e] * prod[kk * E + e];
        }
        const dz = s * gk * (1 - gk);
        for (let e = 0; e < E; e++) {
          const j = kk * E + e, dp = dg[n * H + j] * gk + dz * uu[j], sg = sig(a(j));
          duw[j] += dz * prod[j];
          dab[n * 2 * H + H + j] = dp * a(j) * sg;
          dab[n * 2 * H + j] = dp * b(j) * (sg + a(j) * sg * (1 - sg));
        }
      }
    }
    close(o.gated, gated, `${where} swiglu_gate_fwd gated`);
    close(o.g, gw, `${where} swiglu_gate_fwd g`);
    k.swiglu_gate_bwd(h.ptr("dg"), h.ptr("ab"), h.ptr("u"), h.ptr("g"), h.ptr("dab"), h.ptr("du"), h.ptr("s"), N, K, E);
    o = h.read(["gated", "g", "p", "dab", "du", "s"]);
    close(o.dab, dab, `${where} swiglu_gate_bwd dab`);
    close(o.du, duw, `${where} swiglu_gate_bwd du`, 1e-5);
    h.dispose();

    // fd_resid_fwd (with and without the running sum), fd_resid_bwd (first and accumulating)
    for (const withOut of [false, true]) {
      h = new Heap({ a: N * D, y: N * D, stream: N * D, out: N * D, xm: N * D, rstd: N }, rng);
      const a = h.init("a"), y = h.init("y"), out0 = Float32Array.from(h.init("out")), eps = 1e-5;
      k.fd_resid_fwd(
        h.ptr("a"),
        h.ptr("y"),
        h.ptr("stream"),
        withOut ? h.ptr("out") : 0,
        h.ptr("xm"),
        h.ptr("rstd"),
        N,
        D,
        eps,
      );
      o = h.read(["stream", "xm", "rstd", ...(withOut ? ["out"] : [])]);
      const st = a.map((v, i) => v + y[i]), xm = new Float64Array(N * D), rs = new Float64Array(N);
      for (let n = 0; n < N; n++) {
        let ss = 0;
        for (let j = 0; j < D; j++) ss += st[n * D + j] ** 2;
        rs[n] = 1 / Math.sqrt(ss / D + eps);
        for (let j = 0; j < D; j++) xm[n * D + j] = st[n * D + j] * rs[n];
      }
      close(o.stream, st, `${where} fd_resid_fwd stream`);
      close(o.rstd, rs, `${where} fd_resid_fwd rstd`);
      close(o.xm, xm, `${where} fd_resid_fwd xm`);
      if (withOut) close(o.out, out0.map((v, i) => v + y[i]), `${where} fd_resid_fwd out`);
      h.dispose();
    }
    for (const first of [1, 0]) {
      h = new Heap({ dxm: N * D, xm: N * D, rstd: N, dout: N * D, G: N * D, dy: N * D }, rng);
      const dxm = h.init("dxm"), xm = h.init("xm"), rstd = h.init("rstd"), dout = h.init("dout");
      const G0 = Float32Array.from(h.init("G"));
      k.fd_resid_bwd(h.ptr("dxm"), h.ptr("xm"), h.ptr("rstd"), h.ptr("dout"), h.ptr("G"), h.ptr("dy"), N, D, first);
      o = h.read(["G", "dy"]);
      const G = new Float64Array(N * D), dy = new Float64Array(N * D);
      for (let n = 0; n < N; n++) {
        let dot = 0;
        for (let j = 0; j < D; j++) dot += dxm[n * D + j] * xm[n * D + j];
        for (let j = 0; j < D; j++) {
          const i = n * D + j, gm = rstd[n] * (dxm[i] - xm[i] * dot / D);
          G[i] = first ? gm : G0[i] + gm;
          dy[i] = dout[i] + G[i];
        }
      }
      close(o.G, G, `${where} fd_resid_bwd G (first ${first})`, 1e-5);
      close(o.dy, dy, `${where} fd_resid_bwd dy (first ${first})`, 1e-5);
      h.dispose();
    }
    // rmsnorm_fwd/bwd (with a gain; without one the op-level test in wasm_fused_test.ts covers it), swiglu_fwd/bwd
    h = new Heap({ x: N * D, g: D, y: N * D, rstd: N, dy: N * D, dx: N * D, dg: D }, rng);
    {
      const x = h.init("x"), gn = h.init("g"), dy = h.init("dy"), eps = 1e-5;
      k.rmsnorm_fwd(h.ptr("x"), h.ptr("g"), h.ptr("y"), h.ptr("rstd"), N, D, eps);
      k.rmsnorm_bwd(h.ptr("dy"), h.ptr("x"), h.ptr("g"), h.ptr("rstd"), h.ptr("dx"), h.ptr("dg"), N, D);
      o = h.read(["y", "rstd", "dx", "dg"]);
      const y = new Float64Array(N * D), dx = new Float64Array(N * D), dgw = new Float64Array(D);
      for (let n = 0; n < N; n++) {
        let ss = 0, dot = 0;
        for (let j = 0; j < D; j++) ss += x[n * D + j] ** 2;
        const r = 1 / Math.sqrt(ss / D + eps);
        for (let j = 0; j < D; j++) dot += dy[n * D + j] * gn[j] * x[n * D + j] * r;
        for (let j = 0; j < D; j++) {
          const i = n * D + j, xh = x[i] * r;
          y[i] = xh * gn[j];
          dx[i] = r * (dy[i] * gn[j] - xh * dot / D);
          dgw[j] += dy[i] * xh;
        }
      }
      close(o.y, y, `${where} rmsnorm_fwd`);
      close(o.dx, dx, `${where} rmsnorm_bwd dx`, 1e-5);
      close(o.dg, dgw, `${where} rmsnorm_bwd dg`, 1e-5);
    }
    h.dispose();
    h = new Heap({ ab: N * 2 * H, out: N * H, dh: N * H, dab: N * 2 * H }, rng);
    {
      const ab = h.init("ab"), dh = h.init("dh");
      k.swiglu_fwd(h.ptr("ab"), h.ptr("out"), N, H);
      k.swiglu_bwd(h.ptr("dh"), h.ptr("ab"), h.ptr("dab"), N, H);
      o = h.read(["out", "dab"]);
      const out = new Float64Array(N * H), dab = new Float64Array(N * 2 * H);
      for (let n = 0; n < N; n++) {
        for (let j = 0; j < H; j++) {
          const a = ab[n * 2 * H + j], b = ab[n * 2 * H + H + j], s = sig(a), d = dh[n * H + j];
          out[n * H + j] = a * s * b;
          dab[n * 2 * H + H + j] = d * a * s;
          dab[n * 2 * H + j] = d * b * (s + a * s * (1 - s));
        }
      }
      close(o.out, out, `${where} swiglu_fwd`);
      close(o.dab, dab, `${where} swiglu_bwd`);
    }
    h.dispose();
    // gather_rows (exact), adamw (bit-exact against the composite's float32 operations), xent_rows / xent_bwd
    h = new Heap({ x: 5 * D, ids: N, out: N * D }, rng);
    {
      const x = h.init("x"), idsCopy = new Int32Array(N).map((_, i) => (i * 3 + 1) % 5);
      h.write("ids", new Float32Array(idsCopy.buffer)); // int32 bits in the buffer's words
      k.gather_rows(h.ptr("x"), h.ptr("ids"), h.ptr("out"), N, D);
      const out = h.read(["out"]).out, want = new Float32Array(N * D);
      for (let i = 0; i < N; i++) want.set(x.subarray(idsCopy[i] * D, idsCopy[i] * D + D), i * D);
      close(out, want, `${where} gather_rows`, 0);
    }
    h.dispose();
    // transpose2d (exact): 2 matrices of [N + 2, D] (rows and columns both odd and a multiple of 4 among the sizes)
    for (const [R, C] of [[N + 2, D], [D, N + 2]]) {
      h = new Heap({ x: 2 * R * C, out: 2 * R * C }, rng);
      const x = h.init("x");
      k.transpose2d(h.ptr("x"), h.ptr("out"), 2, R, C);
      const out = h.read(["out"]).out, want = new Float32Array(2 * R * C);
      for (let b = 0; b < 2; b++) {
        for (let i = 0; i < R; i++) for (let j = 0; j < C; j++) want[b * R * C + j * R + i] = x[b * R * C + i * C + j];
      }
      close(out, want, `${where} transpose2d [2, ${R}, ${C}]`, 0);
      h.dispose();
    }
    const n = N * D;
    h = new Heap({ p: n, m: n, v: n, g: n, p1: n, m1: n, v1: n }, rng);
    {
      const [p, m, g] = [h.init("p"), h.init("m"), h.init("g")], v = h.init("v").map(Math.abs);
      h.write("v", v);
      const f = Math.fround, [b1, b2, eps, decay, step] = [0.9, 0.95, 1e-8, 1 - 1e-3 * 0.1, 1e-3 / 0.19];
      const sq = Math.sqrt(0.0975);
      k.adamw(
        h.ptr("p"),
        h.ptr("m"),
        h.ptr("v"),
        h.ptr("g"),
        h.ptr("p1"),
        h.ptr("m1"),
        h.ptr("v1"),
        n,
        b1,
        1 - b1,
        b2,
        1 - b2,
        sq,
        eps,
        decay,
        step,
      );
      o = h.read(["p1", "m1", "v1"]);
      const [B1, C1, B2, C2, SQ, EPS, DEC, ST] = [b1, 1 - b1, b2, 1 - b2, sq, eps, decay, step].map(f);
      const m1 = m.map((mi, i) => f(f(mi * B1) + f(g[i] * C1)));
      const v1 = v.map((vi, i) => f(f(vi * B2) + f(f(g[i] * g[i]) * C2)));
      const p1 = p.map((pi, i) => f(f(pi * DEC) - f(f(m1[i] / f(f(f(Math.sqrt(v1[i])) / SQ) + EPS)) * ST)));
      close(o.m1, m1, `${where} adamw m`, 0);
      close(o.v1, v1, `${where} adamw v`, 0);
      close(o.p1, p1, `${where} adamw p`, 0);
    }
    h.dispose();
    const V = D;
    h = new Heap({ l: N * V, mx: N, se: N, tgt: N, lse: N, dl: N * V }, rng);
    {
      const l = h.init("l"), tg = new Int32Array(N).map((_, i) => (i === 1 ? -1 : (i * 7) % V)), sc = 0.37;
      h.write("tgt", new Float32Array(tg.buffer));
      k.xent_rows(h.ptr("l"), h.ptr("mx"), h.ptr("se"), N, V);
      const lse = new Float32Array(N);
      const r = h.read(["mx", "se"]);
      for (let i = 0; i < N; i++) {
        let mx = -Infinity, se = 0;
        for (let j = 0; j < V; j++) mx = Math.max(mx, l[i * V + j]);
        for (let j = 0; j < V; j++) se += Math.exp(l[i * V + j] - mx);
        close(r.mx.subarray(i, i + 1), [mx], `${where} xent_rows max`, 0);
        close(r.se.subarray(i, i + 1), [se], `${where} xent_rows sum`);
        lse[i] = mx + Math.log(se);
      }
      h.write("lse", lse);
      k.xent_bwd(sc, h.ptr("l"), h.ptr("tgt"), h.ptr("lse"), h.ptr("dl"), N, V);
      const want = new Float64Array(N * V);
      for (let i = 0; i < N; i++) {
        if (tg[i] < 0) continue;
        for (let j = 0; j < V; j++) want[i * V + j] = Math.exp(l[i * V + j] - lse[i]) * sc - (j === tg[i] ? sc : 0);
      }
      close(h.read(["mx", "se", "dl"]).dl, want, `${where} xent_bwd`);
    }
    h.dispose();
    // add
    h = new Heap({ a: N * D, b: N * D, out: N * D }, rng);
    const a = h.init("a"), b = h.init("b");
    k.add(h.ptr("a"), h.ptr("b"), h.ptr("out"), N * D);
    close(h.read(["out"]).out, a.map((v, i) => v + b[i]), `${where} add`, 0);
    h.dispose();
  }
});
