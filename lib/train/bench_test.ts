import assert from "node:assert/strict";
import { DEFAULT_MODEL } from "../core/config.ts";
import { benchmark } from "./bench.ts";

Deno.test("benchmark times the requested number of steps and reports consistent rates", async () => {
  const model = { ...DEFAULT_MODEL, d_model: 16, n_layers: 1, n_heads: 2, d_ff: 32, seq_len: 8 };
  const r = await benchmark({ backend: "wasm", model, batchSize: 2, steps: 3, warmup: 1 });
  assert.equal(r.backend, "wasm");
  assert.equal(r.ms_per_step.length, 3);
  assert.equal(r.tokens_per_step, 16);
  assert.ok(r.min_ms <= r.median_ms && r.median_ms > 0);
  assert.ok(Math.abs(r.tokens_per_sec - 16 / (r.median_ms / 1000)) < 1e-6);
});
