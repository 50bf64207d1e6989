import assert from "node:assert/strict";
import { initBackend } from "../backends/mod.ts";
import { listCheckpoints } from "./checkpoint.ts";
import { Preempted, train } from "./mod.ts";
import { syntheticDataset, tinyRunConfig } from "./test_util.ts";

const dataset = syntheticDataset();

Deno.test("train: preempt() between checkpoints writes one at that step; the resumed run is bit-identical", async () => {
  await initBackend("cpu");
  const config = tinyRunConfig("cpu", { steps: 9, log_every: 1, eval_every: 4, checkpoint_every: 4 });
  const refDir = await Deno.makeTempDir(), dir = await Deno.makeTempDir();
  try {
    const ref = await train({ config, dataset, dir: refDir });
    let asked = 0;
    await assert.rejects(
      train({ config, dataset, dir, preempt: () => ++asked > 6 }), // asked before steps 0..6: stop before step 6
      (e) => e instanceof Preempted && e.step === 6,
    );
    assert.deepEqual(await listCheckpoints(dir), ["step-000006", "step-000004"]);
    const resumed = await train({ config, dataset, dir });
    assert.equal(resumed.summary.resumed_from_step, 6);
    assert.equal(resumed.summary.steps_this_attempt, 3);
    assert.deepEqual(resumed.metrics, ref.metrics);
    for (const k of ["final_train_loss", "val_loss", "val_ppl", "steps_done"] as const) {
      assert.ok(Object.is(resumed.summary[k], ref.summary[k]), `${k}: ${resumed.summary[k]} vs ${ref.summary[k]}`);
    }
    assert.deepEqual(resumed.summary.extra, ref.summary.extra);
  } finally {
    await Deno.remove(refDir, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: preempt() on a step with a periodic checkpoint writes nothing new; at step 0 nothing at all", async () => {
  await initBackend("cpu");
  const config = tinyRunConfig("cpu", { steps: 6, log_every: 1, eval_every: 3, checkpoint_every: 2 });
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      train({ config, dataset, dir, preempt: () => true }),
      (e) => e instanceof Preempted && e.step === 0,
    );
    assert.deepEqual(await listCheckpoints(dir), []);
    let asked = 0;
    await assert.rejects(
      train({ config, dataset, dir, preempt: () => ++asked > 4 }),
      (e) => (e as Preempted).step === 4,
    );
    assert.deepEqual(await listCheckpoints(dir), ["step-000004", "step-000002"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
