/**
 * Concurrent runners: several processes start the same sweep at the same moment. Every run must be
 * trained exactly once (counted from each run's attempts.jsonl and from the processes' own
 * summaries), every process must finish, the database must hold each run exactly once with the
 * results of a single-process run, and no process may die of a DuckDB lock error.
 */
import assert from "node:assert/strict";
import { entryPaths, readAttempts } from "../../runner/cache.ts";
import {
  cleanup,
  cli,
  cliCommand,
  dbRows,
  entries,
  FULL,
  ok,
  type Out,
  type Snapshot,
  snapshot,
  SUITE,
  tempResults,
} from "./helpers.ts";

const SWEEP = ["exp", "faults-sweep", "--plain"];
const RUNS = 4;

async function reference(): Promise<Snapshot> {
  const dir = await tempResults("conc-ref");
  assert.match(ok(await cli(dir, SWEEP), "reference").stdout, new RegExp(`${RUNS} runs: ${RUNS} trained`));
  const snap = await snapshot(dir);
  await cleanup(dir);
  return snap;
}

/** Starts `n` CLI processes at once (optionally with a fault for some) and collects their outputs. */
async function startTogether(dir: string, n: number, faults: Record<number, string> = {}): Promise<Out[]> {
  const children = Array.from(
    { length: n },
    (_, i) => cliCommand(dir, SWEEP, faults[i] ? { env: { FINELAB_FAULT: faults[i] } } : {}).spawn(),
  );
  const dec = new TextDecoder();
  return await Promise.all(children.map(async (c) => {
    const o = await c.output();
    return { code: o.code, signal: o.signal, stdout: dec.decode(o.stdout), stderr: dec.decode(o.stderr) };
  }));
}

function count(outs: Out[], action: string): number {
  return outs.reduce((a, o) => a + Number(new RegExp(`(\\d+) ${action}`).exec(o.stdout)?.[1] ?? 0), 0);
}

async function attemptStarts(dir: string): Promise<number[]> {
  const out: number[] = [];
  for (const e of entries(dir)) {
    const p = entryPaths(`${dir}/cache`, e.split("/").pop()!);
    out.push((await readAttempts(p)).filter((a) => a.event === "start").length);
  }
  return out;
}

async function checkDb(dir: string, ref: Snapshot): Promise<void> {
  assert.deepEqual(
    await dbRows(dir, "SELECT count(*)::INTEGER AS runs, count(DISTINCT hash)::INTEGER AS hashes FROM runs"),
    [{ runs: RUNS, hashes: RUNS }],
  );
  assert.deepEqual(await snapshot(dir), ref, "the concurrent results differ from a single-process run");
}

Deno.test({
  name: "concurrent: 3 processes (4 in the full suite) start one 4-run sweep at once; each run trained once",
  ...SUITE,
  async fn() {
    const ref = await reference();
    const n = FULL ? 4 : 3;
    const dir = await tempResults("conc");
    const outs = await startTogether(dir, n);
    outs.forEach((o, i) => ok(o, `process ${i + 1} of ${n}`));
    for (const o of outs) assert.doesNotMatch(o.stderr, /lock/i, `a process reported a lock problem:\n${o.stderr}`);
    assert.equal(count(outs, "trained"), RUNS, outs.map((o) => o.stdout.split("\n").at(-2)).join("\n"));
    assert.equal(count(outs, "resumed"), 0);
    assert.deepEqual(await attemptStarts(dir), Array(RUNS).fill(1), "every run trained exactly once");
    await checkDb(dir, ref);
    await cleanup(dir);
  },
});

Deno.test({
  name: "concurrent: 3 processes, one SIGKILLed mid-run; the others resume its run and finish the sweep",
  ignore: !FULL,
  ...SUITE,
  async fn() {
    const ref = await reference();
    const dir = await tempResults("conc-kill");
    const outs = await startTogether(dir, 3, { 0: "train.step:5" });
    assert.ok(outs[0].signal === "SIGKILL" || outs[0].code === 137, `process 1 was not killed: ${outs[0].stderr}`);
    ok(outs[1], "process 2");
    ok(outs[2], "process 3");
    // Process 1 died in its first run (after 5 steps); a survivor took over that run's lock and resumed it.
    const starts = await attemptStarts(dir);
    assert.equal(starts.reduce((a, b) => a + b, 0), RUNS + 1, `attempts per run: ${starts}`);
    assert.equal(Math.max(...starts), 2);
    assert.equal(count(outs.slice(1), "resumed"), 1);
    await checkDb(dir, ref);
    await cleanup(dir);
  },
});
