/**
 * Stale runs: a run whose process is alive shows as running (with its heartbeat age); the moment
 * the process dies, however it dies, the same run shows as interrupted, in `runs` and in the
 * database, never as running forever. Rerunning resumes it.
 */
import assert from "node:assert/strict";
import { cleanup, cli, cliCommand, dbRows, entries, FULL, ok, runsJson, SUITE, tempResults } from "./helpers.ts";

const EXP = ["exp", "faults", "--plain"];

/** Waits until `runs` shows a run with the given status (polling), or fails after `ms`. */
async function waitForStatus(dir: string, status: string, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const rows = await runsJson(dir);
    if (rows.some((r) => r.status === status)) return rows;
    if (Date.now() > deadline) throw new Error(`no run became ${status}: ${JSON.stringify(rows)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test({
  name: "stale: a stuck run shows as running; SIGKILLed it shows as interrupted (runs and database); a rerun resumes",
  ...SUITE,
  async fn() {
    const dir = await tempResults("stale");
    // A process that hangs after its 5th step: alive, holding the run's lock.
    const child = cliCommand(dir, EXP, { env: { FINELAB_FAULT: "hang@train.step:5" } }, false).spawn();
    try {
      const [running] = await waitForStatus(dir, "running");
      assert.equal(running.run_id, "toy/s0");
      assert.match(running.heartbeat!, /^\d+s ago$/);
      assert.match(running.note!, /^pid \d+ on /);
      // A second runner does not train it meanwhile: it defers it and waits (here: we only ask for a dry run).
      const dry = ok(await cli(dir, ["exp", "faults", "--dry-run"]));
      assert.match(dry.stdout, /training elsewhere/);
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
    const [dead] = await runsJson(dir);
    assert.equal(dead.status, "interrupted");
    assert.match(dead.heartbeat!, /^\d+s ago$/);
    assert.match(dead.note!, /is gone; `deno task exp faults` resumes it/);
    assert.equal(dead.attempts, 1);
    ok(await cli(dir, ["db", "rebuild"]));
    assert.deepEqual(await dbRows(dir, "SELECT status FROM runs"), [{ status: "interrupted" }]);
    const again = ok(await cli(dir, EXP));
    assert.match(again.stdout, /1 runs: 1 resumed/);
    const [done] = await runsJson(dir);
    assert.equal(done.status, "completed");
    assert.equal(done.heartbeat, null);
    assert.equal(done.attempts, 2);
    assert.deepEqual(await dbRows(dir, "SELECT status, steps_done FROM runs"), [{
      status: "completed",
      steps_done: 12,
    }]);
    await cleanup(dir);
  },
});

Deno.test({
  name: "stale: a second runner waits for a stuck one and takes the run over when it dies",
  ignore: !FULL,
  ...SUITE,
  async fn() {
    const dir = await tempResults("stale2");
    const stuck = cliCommand(dir, EXP, { env: { FINELAB_FAULT: "hang@train.step:3" } }, false).spawn();
    await waitForStatus(dir, "running");
    const second = cliCommand(dir, EXP).spawn();
    await new Promise((r) => setTimeout(r, 1500)); // the second runner is now waiting for the lock
    stuck.kill("SIGKILL");
    await stuck.status;
    const o = await second.output();
    const stdout = new TextDecoder().decode(o.stdout), stderr = new TextDecoder().decode(o.stderr);
    assert.equal(o.code, 0, stderr);
    assert.match(stderr, /is training it; moving on and coming back to it/);
    assert.match(stdout, /1 runs: 1 resumed/);
    assert.equal((await runsJson(dir))[0].attempts, 2);
    await cleanup(dir);
  },
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test({
    name: `stale: ${signal} (${signal === "SIGTERM" ? "a scheduler's scancel" : "Ctrl-C"}) marks the run interrupted ` +
      "itself, writes the attempt's end line, exits 130; the rerun resumes",
    ...SUITE,
    async fn() {
      const dir = await tempResults(signal.toLowerCase());
      const args = [...EXP, "--set", "train.steps=60"];
      const child = cliCommand(dir, args).spawn();
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      while (!/step 1\d\/60/.test(seen)) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += value;
      }
      child.kill(signal);
      while (!(await reader.read()).done) { /* drain */ }
      const st = await child.status;
      child.stdout.cancel().catch(() => {});
      assert.equal(st.code, 130, seen);
      const [entry] = entries(dir);
      const status = JSON.parse(await Deno.readTextFile(`${entry}/status.json`));
      assert.equal(status.status, "interrupted"); // written by the signal handler, not derived
      const attempts = (await Deno.readTextFile(`${entry}/attempts.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      assert.deepEqual(attempts.map((a) => [a.event, a.outcome]), [["start", undefined], ["end", "interrupted"]]);
      assert.ok(attempts[1].step >= 10, `end line step ${attempts[1].step}`);
      const [row] = await runsJson(dir);
      assert.equal(row.status, "interrupted");
      const again = ok(await cli(dir, args));
      assert.match(again.stdout, /1 runs: 1 resumed/);
      await cleanup(dir);
    },
  });
}

Deno.test({
  name: "stale: SIGTERM while a step blocks the main thread (a long FFI/BLAS call) ends the process with the end " +
    "line written, exit 130; the rerun resumes to the uninterrupted run's numbers",
  ...SUITE,
  async fn() {
    const dir = await tempResults("sigblocked"), ref = await tempResults("sigblocked-ref");
    // `hang` blocks the main thread in Atomics.wait after step 5: its own signal listener can never run.
    const child = cliCommand(dir, EXP, { env: { FINELAB_FAULT: "hang@train.step:5" } }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("FINELAB_FAULT: hanging at train.step:5")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    child.kill("SIGTERM");
    // A deadline, not a speed target: without the watchdog the process would hang here forever.
    const deadline = setTimeout(() => child.kill("SIGKILL"), 30_000);
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    const st = await child.status;
    clearTimeout(deadline);
    child.stdout.cancel().catch(() => {});
    assert.equal(st.code, 130, `exit ${st.code} signal ${st.signal}\n${seen}`);
    assert.match(seen, /interrupted \(SIGTERM\) inside a step .* marked interrupted at step 5/);
    const [entry] = entries(dir);
    assert.equal(JSON.parse(await Deno.readTextFile(`${entry}/status.json`)).status, "interrupted");
    const attempts = (await Deno.readTextFile(`${entry}/attempts.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(attempts.map((a) => [a.event, a.outcome, a.step]), [
      ["start", undefined, undefined],
      ["end", "interrupted", 5],
    ]);
    assert.match(attempts[1].detail, /SIGTERM while a step was blocking/);
    assert.match(ok(await cli(dir, EXP)).stdout, /1 runs: 1 resumed/);
    ok(await cli(ref, EXP));
    const sql = "SELECT status, steps_done, val_loss, final_train_loss FROM runs";
    assert.deepEqual(await dbRows(dir, sql), await dbRows(ref, sql));
    await cleanup(dir, ref);
  },
});
