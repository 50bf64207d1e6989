import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  glueRequires,
  initThreadedWasm,
  patchWorker,
  WASM_MAX_THREADS,
  wasmThreadsUnsupported,
} from "./wasm_threads.ts";
import { wasmDistDir } from "./setup/wasm.ts";

const workerFile = () =>
  readFileSync(join(wasmDistDir(), "..", "wasm-out", "tfjs-backend-wasm-threaded-simd.worker.js"), "utf8");

Deno.test("wasm threads: Deno has shared memory and WebAssembly atomics", () => {
  assert.equal(wasmThreadsUnsupported(), null);
});

Deno.test("wasm threads: the pinned worker script is patched, and a changed one is refused by name", () => {
  const worker = workerFile();
  const patched = patchWorker(worker, "var GLUE_MARKER = 1;");
  assert.ok(patched.includes('(0,eval)("var GLUE_MARKER = 1;")'));
  assert.ok(!patched.includes("importScripts(e.data.urlOrBlob)"));
  assert.ok(!patched.includes("Object.assign(global,"));
  assert.throws(
    () => patchWorker(worker.replace("importScripts(e.data.urlOrBlob)", "loadScript(e.data.urlOrBlob)"), ""),
    /the glue loading .* not found exactly once .* threads = 1/,
  );
  assert.throws(() => patchWorker(patched, ""), /not found exactly once/);
});

Deno.test("wasm threads: the glue's bundle-local requires resolve to node modules", () => {
  const decls = glueRequires("x = require$$0.readFileSync; y = require$$4.cpus();", wasmDistDir());
  assert.equal(decls, 'var commonjsGlobal = globalThis, require$$0 = require("fs"), require$$4 = require("os");\n');
  assert.throws(() => glueRequires("require$$99", wasmDistDir()), /require\$\$99 is not declared/);
});

/** Trains dense and Finedeep 3 steps on wasm with `threads` in a fresh process (the pool is per process). */
async function trainChild(threads: number) {
  const bench = new URL("../train/bench.ts", import.meta.url).href;
  const code = `
    import { benchmark } from ${JSON.stringify(bench)};
    import { DEFAULT_MODEL } from ${JSON.stringify(new URL("../core/config.ts", import.meta.url).href)};
    const out = [];
    for (const kind of ["dense", "finedeep"]) {
      const r = await benchmark({ backend: "wasm", threads: ${threads}, model: { ...DEFAULT_MODEL, ffn: { kind } },
        steps: 2, warmup: 1, batchSize: 4 });
      out.push({ kind, loss_hex: r.loss_hex, threads: r.backend_details.threads });
    }
    console.log(JSON.stringify(out));`; // no Deno.exit: the process must end by itself
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-prompt", "--unstable-webgpu", "--ext=ts", code],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  });
  const r = await child.output();
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, `child (threads ${threads}) failed or hung: ${err.slice(-2000)}`);
  const lines = new TextDecoder().decode(r.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as { kind: string; loss_hex: string[]; threads: number }[];
}

Deno.test({
  name: "wasm threads: 2 threads train dense and Finedeep to the same loss bits as 1, and the process exits",
  ignore: wasmThreadsUnsupported() !== null,
  async fn() {
    const [one, two] = await Promise.all([trainChild(1), trainChild(2)]);
    assert.deepEqual(one.map((r) => r.threads), [1, 1]);
    assert.deepEqual(two.map((r) => r.threads), [2, 2]);
    for (let i = 0; i < one.length; i++) {
      assert.equal(one[i].loss_hex.length, 3);
      assert.deepEqual(two[i].loss_hex, one[i].loss_hex, `${one[i].kind}: 2 threads changed the losses`);
    }
    // Finedeep differs from dense (the fused block ran, not a dense fallback).
    assert.notDeepEqual(one[1].loss_hex, one[0].loss_hex);
  },
});

Deno.test("wasm threads: a thread count outside 2..8 is refused", async () => {
  for (const t of [1, WASM_MAX_THREADS + 1, 2.5]) {
    await assert.rejects(
      initThreadedWasm(t, () => Promise.resolve(), { distDir: wasmDistDir() }),
      /allowed: 2\.\.8/,
    );
  }
});
