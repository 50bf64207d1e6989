import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { defaultWasmThreads, initBackend, resolveBackend, wasmDistDir } from "./mod.ts";
import { nativeAvailability } from "./native/mod.ts";
import { existsSync } from "node:fs";

Deno.test("explicit backends resolve; unavailable tensorflow throws naming backend, cause and fix", async () => {
  assert.equal((await resolveBackend("cpu")).name, "cpu");
  assert.equal((await resolveBackend("wasm")).name, "wasm");
  if (!existsSync(new URL("../../node_modules/@tensorflow/tfjs-node", import.meta.url))) {
    await assert.rejects(
      resolveBackend("tensorflow"),
      (e: Error) =>
        /backend "tensorflow" is unavailable/.test(e.message) && /tfjs-node/.test(e.message) &&
        /deno.json/.test(e.message) && /To fix/.test(e.message),
    );
  }
  await assert.rejects(
    resolveBackend("gpu" as never),
    /not a backend; allowed: auto, tensorflow, webgpu, native, wasm, cpu/,
  );
});

Deno.test("auto never picks a software WebGPU adapter and explains what it skipped", async () => {
  const r = await resolveBackend("auto");
  assert.ok(["tensorflow", "webgpu", "native", "wasm", "cpu"].includes(r.name));
  if (r.name === "wasm") assert.match(r.reason, /tensorflow: .*webgpu: .*native: .*to fix: /);
  // native is chosen exactly when it is available (and nothing faster is).
  if (r.name !== "tensorflow" && r.name !== "webgpu") assert.equal(r.name === "native", nativeAvailability().ok);
  if (r.name === "webgpu") assert.doesNotMatch(r.reason, /software/);
  const gpu = (navigator as { gpu?: GPU }).gpu;
  if (gpu) {
    const a = await gpu.requestAdapter();
    const info = (a as unknown as { info?: { isFallbackAdapter?: boolean } })?.info;
    if (info?.isFallbackAdapter) {
      assert.notEqual(r.name, "webgpu");
      // An explicit request still works on a fallback adapter.
      assert.equal((await resolveBackend("webgpu")).name, "webgpu");
    }
  }
});

Deno.test("initBackend sets the backend, is idempotent and records details", async () => {
  const w = await initBackend("wasm");
  assert.equal(tf.getBackend(), "wasm");
  assert.equal(w.tfjs, tf.version_core);
  assert.equal(w.details.simd, true);
  assert.equal(w.details.threads, defaultWasmThreads());
  if (defaultWasmThreads() > 1) assert.equal(w.details.multithread_support, true);
  // The thread pool is fixed once the backend is up: another count is refused, the same one is not.
  const other = defaultWasmThreads() === 1 ? 2 : 1;
  await assert.rejects(initBackend("wasm", { threads: other }), /already initialised .* cannot be set now/);
  assert.equal(await initBackend("wasm", { threads: defaultWasmThreads() }), w);
  assert.match(String(w.details.kernels_replaced), /BatchMatMul/);
  assert.equal(await initBackend("wasm"), w);
  assert.ok(tf.env().getBool("PROD"));
  const c = await initBackend("cpu");
  assert.equal(tf.getBackend(), "cpu");
  assert.equal(c.name, "cpu");
  assert.ok(existsSync(wasmDistDir() + "tfjs-backend-wasm-simd.wasm"));
});
