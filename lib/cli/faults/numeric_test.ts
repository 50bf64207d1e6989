/**
 * Numerical faults: NaN gradients or an infinite loss stop the run as failed at that step; its last
 * good checkpoint is kept (and verifies); the failure is in summary.json, in `runs` and in the
 * database; the command exits non-zero; other runs of a sweep are unaffected; `--force` retrains.
 */
import assert from "node:assert/strict";
import { loadCheckpoint } from "../../train/checkpoint.ts";
import { cli, dbRows, entries, FULL, ok, type Out, runsJson, snapshot, SUITE } from "./helpers.ts";
import { withTempDir } from "../../util/testing.ts";

const EXP = ["exp", "faults", "--plain"];

/** Options of {@link failingRun}. */
interface FailingRun {
  /** Prefix of the fresh results folder. */
  prefix: string;
  /** The command (default: the `faults` experiment). */
  args?: string[];
  /** FINELAB_FAULT for the run, if any. */
  fault?: string;
}

/**
 * Runs the command in a fresh results folder, asserts that it exits 1 (a run failed or diverged), then
 * hands the folder and the output to `check`; the folder is removed however the test ends.
 */
function failingRun(run: FailingRun, check: (dir: string, o: Out) => Promise<void>): Promise<void> {
  return withTempDir(run.prefix, async (dir) => {
    const o = await cli(dir, run.args ?? EXP, run.fault ? { env: { FINELAB_FAULT: run.fault } } : {});
    assert.equal(o.code, 1, o.stderr);
    await check(dir, o);
  });
}

Deno.test({
  name: "numeric: NaN gradients at step 4 fail the run at step 4, keep its last good checkpoint, report it everywhere",
  ...SUITE,
  fn: () =>
    failingRun({ prefix: "nan", fault: "nan@train.grad:5" }, async (dir, o) => {
      assert.match(o.stdout, /1 runs: 1 failed/);
      assert.match(
        o.stderr,
        /run toy\/s0 FAILED at step 4: non-finite gradient norm NaN at step 4 \(last good loss \d/,
      );
      assert.match(o.stderr, /its last good checkpoint is kept in .*checkpoints\. Lower train\.lr/);
      const [row] = await dbRows(
        dir,
        "SELECT status, steps_done, failure_step, failure_reason, failure_last_good_loss, val_loss FROM runs",
      );
      assert.equal(row.status, "failed");
      assert.equal(row.steps_done, 4);
      assert.equal(row.failure_step, 4);
      assert.match(String(row.failure_reason), /non-finite gradient norm NaN at step 4/);
      assert.ok(Number.isFinite(row.failure_last_good_loss as number));
      // The metrics stop before the bad step: nothing non-finite was logged.
      const [m] = await dbRows(
        dir,
        "SELECT max(step) AS last, count(*) FILTER (WHERE isnan(value)) AS nans FROM metrics",
      );
      assert.deepEqual([m.last, Number(m.nans)], [4, 0]);
      const [entry] = entries(dir);
      const summary = JSON.parse(await Deno.readTextFile(`${entry}/summary.json`));
      assert.equal(summary.status, "failed");
      assert.equal(summary.failure.step, 4);
      // The last good checkpoints are kept and verify, with finite weights.
      const kept = [...Deno.readDirSync(`${entry}/checkpoints`)].map((e) => e.name).sort();
      assert.deepEqual(kept, ["step-000002", "step-000004"]);
      const ck = await loadCheckpoint(`${entry}/checkpoints/step-000004`);
      assert.equal(ck.state.step, 4);
      for (const [name, w] of ck.weights) assert.ok(w.data.every(Number.isFinite), `${name} is not finite`);
      const [r] = await runsJson(dir);
      assert.equal(r.status, "failed");
      assert.match(r.note!, /gradient norm NaN/);
      // A failed run is a result: the same command does not retrain it (it would fail again) and exits 1.
      const again = await cli(dir, EXP);
      assert.equal(again.code, 1);
      assert.match(again.stdout, /1 runs: 1 cached/);
      assert.equal((await runsJson(dir))[0].attempts, 1);
      // --force retrains it (here without the fault: it completes, like an uninterrupted run).
      await withTempDir("nan-ref", async (ref) => {
        ok(await cli(ref, EXP));
        ok(await cli(dir, [...EXP, "--force"]));
        assert.deepEqual(await snapshot(dir), await snapshot(ref));
      });
    }),
});

Deno.test({
  name: "numeric: an infinite loss at step 2 fails the run at step 2 with the step-2 checkpoint kept",
  ...SUITE,
  fn: () =>
    failingRun({ prefix: "inf", fault: "nan@train.loss:3" }, async (dir, o) => {
      assert.match(o.stderr, /FAILED at step 2: non-finite loss Infinity at step 2/);
      assert.deepEqual(await dbRows(dir, "SELECT status, failure_step FROM runs"), [{
        status: "failed",
        failure_step: 2,
      }]);
      const [entry] = entries(dir);
      assert.deepEqual([...Deno.readDirSync(`${entry}/checkpoints`)].map((e) => e.name), ["step-000002"]);
    }),
});

Deno.test({
  name: "numeric: NaN in one run of a sweep fails that run only; the other three complete",
  ignore: !FULL,
  ...SUITE,
  fn: () =>
    failingRun(
      { prefix: "nan-sweep", args: ["exp", "faults-sweep", "--plain"], fault: "nan@train.grad:3" },
      async (dir, o) => {
        assert.match(o.stdout, /4 runs: 1 failed, 3 trained|4 runs: 3 trained, 1 failed/);
        assert.deepEqual(
          await dbRows(dir, "SELECT status, count(*)::INTEGER AS n FROM runs GROUP BY status ORDER BY status"),
          [
            { status: "completed", n: 3 },
            { status: "failed", n: 1 },
          ],
        );
      },
    ),
});

const DIVERGE = [...EXP, "--no-plot", "--set", "train.lr=10,0.003", "--set", "train.grad_clip=0"];

Deno.test({
  name: "numeric: lr = 10 without clipping diverges (status diverged in the cache, runs and the database, exit 1); " +
    "the other run of the multirun sweep completes",
  ...SUITE,
  fn: () =>
    failingRun({ prefix: "diverge", args: [...DIVERGE, "--set", "train.steps=20"] }, async (dir, o) => {
      assert.match(o.stdout, /2 runs: 1 diverged, 1 trained/);
      assert.match(o.stderr, /run toy\/lr=10\/s0 DIVERGED: diverged: training loss above \d+\.\d+ .* from step 1 to /);
      assert.match(o.stderr, /lower train\.lr or set train\.grad_clip/);
      const rows = await dbRows(dir, "SELECT run_id, status, failure_step, failure_reason FROM runs ORDER BY run_id");
      assert.deepEqual(rows.map((r) => [r.run_id, r.status, r.failure_step]), [
        ["toy/lr=0.003/s0", "completed", null],
        ["toy/lr=10/s0", "diverged", 1],
      ]);
      const runs = await runsJson(dir);
      assert.deepEqual(runs.map((r) => r.status).sort(), ["completed", "diverged"]);
      // a diverged run is finished: the rerun trains nothing and still exits 1
      const again = await cli(dir, [...DIVERGE, "--set", "train.steps=20"]);
      assert.equal(again.code, 1, again.stderr);
      assert.match(again.stdout, /2 runs: 2 cached/);
    }),
});
