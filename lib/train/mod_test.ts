import assert from "node:assert/strict";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import { initBackend } from "../backends/mod.ts";
import { flopsPerToken, loadFfn, paramCount } from "../models/variants.ts";
import { listCheckpoints } from "./checkpoint.ts";
import { train, type TrainProgress, validateTrain } from "./mod.ts";
import { syntheticDataset, tinyRunConfig } from "./test_util.ts";

const dataset = syntheticDataset();

async function finalState(dir: string) {
  return JSON.parse(await Deno.readTextFile(join(dir, "checkpoints", "final", "state.json")));
}

Deno.test("train logs, evaluates, checkpoints and summarises a run (cpu)", async () => {
  const dir = await Deno.makeTempDir();
  const config = tinyRunConfig("cpu", { steps: 8, log_every: 3, eval_every: 4, checkpoint_every: 2 });
  const progress: TrainProgress[] = [], tensors: number[] = [];
  await initBackend("cpu");
  const before = tf.memory().numTensors;
  const out = await train({
    config,
    dataset,
    dir,
    progress: (p) => {
      progress.push(p);
      if (p.phase === "train") tensors.push(tf.memory().numTensors);
    },
  });
  assert.equal(tf.memory().numTensors, before, "everything is disposed after train()");
  assert.ok(tensors.every((n) => n === tensors[0]), `tensor count constant across steps: ${tensors}`);
  const s = out.summary;
  assert.equal(s.status, "completed");
  assert.equal(out.stopped, false);
  assert.equal(s.steps_done, 8);
  assert.equal(s.tokens_seen, 8 * 4 * 16);
  assert.equal(s.steps_this_attempt, 8);
  assert.equal(s.resumed_from_step, null);
  await loadFfn("dense");
  assert.equal(s.params, paramCount(config.model));
  assert.equal(s.flops_per_token, flopsPerToken(config.model));
  assert.ok(s.tokens_per_sec > 0 && s.wall_s > 0);
  assert.ok(s.prefill_tokens_per_sec! > 0 && s.decode_tokens_per_sec! > 0, "inference speed measured");
  assert.ok(s.prefill_tokens_per_sec! > s.decode_tokens_per_sec!, "prefill (one pass) is faster per token than decode");
  const rows = (split: string, name: string) => out.metrics.filter((r) => r.split === split && r.name === name);
  assert.deepEqual(rows("train", "loss").map((r) => r.step), [0, 3, 6, 7]);
  assert.deepEqual(rows("train", "lr").map((r) => r.step), [0, 3, 6, 7]);
  assert.equal(rows("train", "lr")[0].value, 1e-2 / 2); // warmup step 0 of 2
  assert.ok(rows("train", "grad_norm").every((r) => r.value > 0));
  assert.deepEqual(rows("val", "loss").map((r) => r.step), [4, 8]);
  const val = rows("val", "loss"), ppl = rows("val", "ppl");
  assert.ok(Math.abs(ppl[1].value - Math.exp(val[1].value)) < 1e-9);
  assert.equal(s.val_loss, val[1].value);
  assert.equal(s.final_train_loss, rows("train", "loss")[3].value);
  const losses = rows("train", "loss").map((r) => r.value);
  assert.ok(losses[3] < losses[0] - 0.5, `loss decreases: ${losses}`);
  assert.ok(val[1].value < Math.log(256), "validation loss below chance");
  assert.deepEqual(progress.filter((p) => p.phase === "train").map((p) => p.step), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(progress.filter((p) => p.phase === "eval").map((p) => p.val_loss), val.map((r) => r.value));
  assert.equal(progress.at(-2)!.eta_s, 0);
  // Only final/ is left; it holds all metrics.
  assert.deepEqual(await listCheckpoints(dir), ["final"]);
  assert.deepEqual((await finalState(dir)).metrics, out.metrics);
  await Deno.remove(dir, { recursive: true });
});

async function resumeIsExact(backend: "cpu" | "wasm" | "webgpu", steps = 8) {
  const config = tinyRunConfig(backend, { steps, checkpoint_every: 2, eval_every: 3 });
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir();
  const full = await train({ config, dataset, dir: a, warn: () => {} });
  const stop = steps === 8 ? 5 : 3, ck = stop - (stop % 2);
  const part = await train({ config, dataset, dir: b, stopAfter: stop });
  assert.equal(part.stopped, true);
  assert.equal(part.summary.status, "failed");
  assert.match(part.summary.failure!.reason, /stopAfter/);
  assert.equal(part.summary.steps_done, stop);
  assert.equal((await listCheckpoints(b))[0], `step-00000${ck}`);
  const warnings: string[] = [];
  const resumed = await train({ config, dataset, dir: b, warn: (m) => warnings.push(m) });
  assert.deepEqual(warnings, []);
  assert.equal(resumed.summary.resumed_from_step, ck);
  assert.equal(resumed.summary.steps_this_attempt, steps - ck);
  assert.equal(resumed.summary.steps_done, steps);
  assert.deepEqual(resumed.metrics, full.metrics, "metrics bit-identical to the uninterrupted run");
  assert.equal(resumed.summary.val_loss, full.summary.val_loss);
  const [fa, fb] = [await finalState(a), await finalState(b)];
  assert.deepEqual(fb.files, fa.files, "final weights and optimizer state byte-identical");
  // Training again on a finished run loads final/ and trains nothing.
  const again = await train({ config, dataset, dir: a });
  assert.equal(again.summary.steps_this_attempt, 0);
  assert.equal(again.summary.resumed_from_step, steps);
  assert.deepEqual(again.metrics, full.metrics);
  assert.equal(again.summary.val_loss, full.summary.val_loss);
  // resume: false starts over (and reproduces the same run).
  const fresh = await train({ config, dataset, dir: a, resume: false });
  assert.equal(fresh.summary.resumed_from_step, null);
  assert.deepEqual(fresh.metrics, full.metrics);
  await Deno.remove(a, { recursive: true });
  await Deno.remove(b, { recursive: true });
}

Deno.test("resume after stopAfter equals the uninterrupted run bit for bit (cpu)", () => resumeIsExact("cpu"));
Deno.test("resume after stopAfter equals the uninterrupted run bit for bit (wasm)", () => resumeIsExact("wasm"));

const gpu = (navigator as { gpu?: GPU }).gpu;
Deno.test({
  name: "resume after stopAfter equals the uninterrupted run bit for bit (webgpu)",
  ignore: !(gpu && (await gpu.requestAdapter())), // needs a WebGPU adapter (llvmpipe is enough)
  fn: () => resumeIsExact("webgpu", 4),
});

Deno.test("a corrupt newest checkpoint is skipped with a warning and training still ends identically", async () => {
  const config = tinyRunConfig("cpu", { steps: 6, checkpoint_every: 2, eval_every: 3 });
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir();
  const full = await train({ config, dataset, dir: a });
  await train({ config, dataset, dir: b, stopAfter: 5 });
  const f = join(b, "checkpoints", "step-000004", "optimizer.safetensors");
  await Deno.writeFile(f, (await Deno.readFile(f)).subarray(0, 100)); // truncated
  const warnings: string[] = [];
  const resumed = await train({ config, dataset, dir: b, warn: (m) => warnings.push(m) });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /ignoring checkpoint .*step-000004: optimizer.safetensors has sha256/);
  assert.equal(resumed.summary.resumed_from_step, 2);
  assert.deepEqual(resumed.metrics, full.metrics);
  await Deno.remove(a, { recursive: true });
  await Deno.remove(b, { recursive: true });
});

Deno.test("a NaN/Inf loss fails the run with the step and the last good loss, and writes no checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  const config = tinyRunConfig("cpu", { lr: 1e30, steps: 6, checkpoint_every: 0 });
  const out = await train({ config, dataset, dir });
  const s = out.summary;
  assert.equal(s.status, "failed");
  assert.ok(s.failure && s.failure.step >= 1, JSON.stringify(s.failure));
  assert.match(s.failure!.reason, /non-finite (loss|gradient norm|values)/);
  const trainLoss = out.metrics.filter((r) => r.split === "train" && r.name === "loss");
  assert.equal(trainLoss.length, s.failure!.step);
  assert.equal(s.failure!.last_good_loss, trainLoss.at(-1)!.value);
  assert.ok(out.metrics.every((r) => Number.isFinite(r.value)));
  assert.equal(s.steps_done, s.failure!.step);
  assert.deepEqual(await listCheckpoints(dir), []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bad configs and mismatched data are rejected with field-level messages", async () => {
  assert.deepEqual(validateTrain(tinyRunConfig("cpu").train), []);
  const e = validateTrain({ ...tinyRunConfig("cpu").train, steps: 0, beta2: 1, grad_clip: -1, lr: Number.NaN });
  assert.deepEqual(e, [
    "train.steps = 0 must be an integer >= 1",
    "train.lr = null must be a number > 0",
    "train.beta2 = 1 must be in [0, 1)",
    "train.grad_clip = -1 must be >= 0 (0 = off)",
  ]);
  const dir = await Deno.makeTempDir();
  await assert.rejects(
    train({ config: tinyRunConfig("cpu", { batch_size: 0 }), dataset, dir }),
    /invalid run config:\n {2}train.batch_size = 0 must be an integer >= 1/,
  );
  const cfg = tinyRunConfig("cpu");
  await assert.rejects(
    train({ config: { ...cfg, model: { ...cfg.model, vocab_size: 128 } }, dataset, dir }),
    /model.vocab_size = 128 does not match the dataset's vocabulary size 256/,
  );
  await assert.rejects(
    train({ config: { ...cfg, model: { ...cfg.model, seq_len: 5000 } }, dataset, dir }),
    /validation split has 4000 tokens, fewer than one sequence/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("train refuses to run twice at once in one process", async () => {
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir();
  const config = tinyRunConfig("wasm", { steps: 2, checkpoint_every: 0 });
  const first = train({ config, dataset, dir: a });
  await assert.rejects(train({ config, dataset, dir: b }), /already running/);
  assert.equal((await first).summary.status, "completed");
  await Deno.remove(a, { recursive: true });
  await Deno.remove(b, { recursive: true });
});

Deno.test("a child continues its seed's batch stream after the parent's steps (init.steps_before)", async () => {
  await initBackend("cpu");
  // Constant learning rate: the 3-step parent's final weights equal the 6-step run's weights after 3 steps.
  const flat = { warmup_steps: 0, min_lr_ratio: 1, checkpoint_every: 0, eval_every: 3 };
  const [p3, p6, c0, c3] = await Promise.all([0, 1, 2, 3].map(() => Deno.makeTempDir()));
  await train({ config: tinyRunConfig("cpu", { ...flat, steps: 3 }), dataset, dir: p3 });
  const long = await train({ config: tinyRunConfig("cpu", { ...flat, steps: 6 }), dataset, dir: p6 });
  const cfg = tinyRunConfig("cpu", { ...flat, steps: 2 });
  const init = { dir: p3, model: cfg.model };
  const cont = await train({ config: cfg, dataset, dir: c3, init: { ...init, steps_before: 3 } });
  const replay = await train({ config: cfg, dataset, dir: c0, init });
  const loss = (o: typeof long, step: number) =>
    o.metrics.find((m) => m.split === "train" && m.name === "loss" && m.step === step)!.value;
  // The child's first batch is the parent stream's batch 3: its loss is the 6-step run's loss at step 3.
  assert.equal(loss(cont, 0), loss(long, 3));
  // Without the offset the child replays the parent's batch 0.
  assert.notEqual(loss(replay, 0), loss(long, 3));
  for (const d of [p3, p6, c0, c3]) await Deno.remove(d, { recursive: true });
});
