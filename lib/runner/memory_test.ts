import assert from "node:assert/strict";
import { DEFAULT_DATA, DEFAULT_MODEL, DEFAULT_TRAIN, type RunConfig } from "../core/config.ts";
import { estimateMemory, formatBytes, machineMemory } from "./memory.ts";

function config(model: Partial<RunConfig["model"]>, batch = 16): RunConfig {
  return {
    experiment: "m",
    variant: "v",
    seed: 0,
    backend: "cpu",
    data: DEFAULT_DATA,
    model: { ...DEFAULT_MODEL, ...model },
    train: { ...DEFAULT_TRAIN, batch_size: batch },
  } as unknown as RunConfig;
}

Deno.test("estimateMemory: 16 bytes per parameter of state plus activations that grow with batch and seq_len", async () => {
  const small = await estimateMemory(config({ d_model: 128, n_layers: 4, n_heads: 4, d_ff: 384, seq_len: 128 }));
  assert.equal(small.state, 16 * small.params);
  assert.equal(small.total, small.state + small.activations);
  assert.ok(small.total > 10e6 && small.total < 1e9, `reference model: ${formatBytes(small.total)}`);
  const big = await estimateMemory(config({ d_model: 128, n_layers: 4, n_heads: 4, d_ff: 384, seq_len: 128 }, 32));
  assert.equal(big.state, small.state);
  assert.ok(Math.abs(big.activations / small.activations - 2) < 1e-9, "activations are linear in the batch");
  // The model: 4.4e12 parameters, far beyond any machine.
  const huge = await estimateMemory(config({ d_model: 65536, n_heads: 1, d_ff: 262144, n_layers: 64 }));
  assert.ok(huge.params > 4e12 && huge.total > 64e12, formatBytes(huge.total));
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(3 * 1024 ** 3), "3.0 GiB");
  const m = machineMemory();
  assert.ok(m === null || (m.total > 0 && m.available <= m.total));
});
