import assert from "node:assert/strict";
import { join } from "node:path";
import { loadFfn, paramSpecs } from "../models/variants.ts";
import {
  checkpointName,
  findLatestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  loadFinalWeights,
  pruneCheckpoints,
  removeTempCheckpoints,
  saveCheckpoint,
} from "./checkpoint.ts";
import { tinyRunConfig } from "./test_util.ts";

const config = tinyRunConfig("cpu");

async function payload(step: number, final = false) {
  const specs = paramSpecs(config.model, await loadFfn("dense"));
  const weights = new Map(
    specs.map((s) => [s.name, { data: new Float32Array(s.shape.reduce((a, b) => a * b, 1)).fill(step) }]),
  );
  const m = new Map(specs.map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1)).fill(step + 0.5)]));
  return {
    specs,
    weights,
    optimizer: { step, m, v: m },
    state: {
      step,
      optimizer_step: step,
      rng_state: 42 + step,
      data_position: step,
      tokens_seen: step * 64,
      wall_s: step / 10,
      last_train_loss: 1 / (step + 1),
      metrics: [{ step, split: "train" as const, name: "loss", value: 1 / (step + 1) }],
      config,
      final,
    },
  };
}

Deno.test("save/load round trip of weights, moments and state", async () => {
  const dir = await Deno.makeTempDir();
  const p = await payload(4);
  const path = await saveCheckpoint(dir, checkpointName(4), p);
  assert.equal(path, join(dir, "checkpoints", "step-000004"));
  const ck = await loadCheckpoint(path, { config, specs: p.specs });
  assert.equal(ck.state.step, 4);
  assert.equal(ck.state.rng_state, 46);
  assert.deepEqual(ck.state.metrics, p.state.metrics);
  assert.match(ck.state.files["model.safetensors"], /^[0-9a-f]{64}$/);
  for (const s of p.specs) {
    assert.deepEqual(ck.weights.get(s.name)!.data, p.weights.get(s.name)!.data);
    assert.deepEqual(ck.optimizer.m.get(s.name), p.optimizer.m.get(s.name));
  }
  assert.equal(ck.optimizer.step, 4);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("leftover temp dirs are ignored and cleaned; a corrupt file falls back to the older checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  await saveCheckpoint(dir, checkpointName(2), await payload(2));
  await saveCheckpoint(dir, checkpointName(4), await payload(4));
  // A crash mid-write leaves a .tmp-* directory (here with a newer step): never read.
  await Deno.mkdir(join(dir, "checkpoints", ".tmp-step-000006-1-abc"));
  await Deno.writeTextFile(join(dir, "checkpoints", ".tmp-step-000006-1-abc", "state.json"), "{");
  assert.deepEqual(await listCheckpoints(dir), ["step-000004", "step-000002"]);
  // Flip one byte of the newest model file.
  const f = join(dir, "checkpoints", "step-000004", "model.safetensors");
  const bytes = await Deno.readFile(f);
  bytes[bytes.length - 1] ^= 1;
  await Deno.writeFile(f, bytes);
  const warnings: string[] = [];
  const ck = await findLatestCheckpoint(dir, { config, warn: (m) => warnings.push(m) });
  assert.equal(ck?.state.step, 2);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /step-000004: model.safetensors has sha256 .* state.json says/);
  // A truncated state.json is also skipped; with nothing valid left, the result is null.
  await Deno.writeTextFile(join(dir, "checkpoints", "step-000002", "state.json"), '{"format": "finelab-chec');
  assert.equal(await findLatestCheckpoint(dir, { config, warn: (m) => warnings.push(m) }), null);
  assert.equal(warnings.length, 3);
  assert.deepEqual(await removeTempCheckpoints(dir), [".tmp-step-000006-1-abc"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a checkpoint of another config or with other tensors is not loaded", async () => {
  const dir = await Deno.makeTempDir();
  await saveCheckpoint(dir, checkpointName(2), await payload(2));
  const warnings: string[] = [];
  const other = { ...config, seed: 99 };
  assert.equal(await findLatestCheckpoint(dir, { config: other, warn: (m) => warnings.push(m) }), null);
  assert.match(warnings[0], /different run config/);
  const specs = paramSpecs({ ...config.model, d_ff: 48 }, await loadFfn("dense"));
  await assert.rejects(
    loadCheckpoint(join(dir, "checkpoints", "step-000002"), { specs }),
    /has shape \[16,64\], the model has \[16,96\]/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("pruning keeps the newest periodic checkpoints and final; replacing is atomic", async () => {
  const dir = await Deno.makeTempDir();
  for (const s of [2, 4, 6, 8]) await saveCheckpoint(dir, checkpointName(s), await payload(s));
  await saveCheckpoint(dir, "final", await payload(10, true));
  await pruneCheckpoints(dir, 2);
  assert.deepEqual(await listCheckpoints(dir), ["final", "step-000008", "step-000006"]);
  await saveCheckpoint(dir, "final", await payload(11, true)); // overwrite
  assert.equal((await loadCheckpoint(join(dir, "checkpoints", "final"))).state.step, 11);
  assert.equal((await loadFinalWeights(dir)).get("norm_f")!.data[0], 11);
  await pruneCheckpoints(dir, 0);
  assert.deepEqual(await listCheckpoints(dir), ["final"]);
  const entries = [...Deno.readDirSync(join(dir, "checkpoints"))].map((e) => e.name);
  assert.deepEqual(entries, ["final"]);
  await Deno.remove(dir, { recursive: true });
  await assert.rejects(loadFinalWeights(dir), /cannot load final weights/);
});
