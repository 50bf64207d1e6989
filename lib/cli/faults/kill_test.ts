/**
 * Kill at any moment: the CLI is SIGKILLed at named points (FINELAB_FAULT, deterministic) and at
 * random times; running the same command again must finish with results bit-identical to an
 * uninterrupted run, each run once in the database, and nothing half-written left or read.
 */
import assert from "node:assert/strict";
import {
  cleanup,
  cli,
  cliCommand,
  dbRows,
  entries,
  FULL,
  killed,
  leftovers,
  ok,
  prng,
  runsJson,
  type Snapshot,
  snapshot,
  SUITE,
  tempResults,
} from "./helpers.ts";
import { readAttempts } from "../../runner/cache.ts";
import { entryPaths } from "../../runner/cache.ts";

const EXP = ["exp", "faults", "--plain"];

/** A kill point and what the rerun must do (the fixture: 12 steps, checkpoints every 2, eval every 4). */
interface KillCase {
  spec: string;
  /** The rerun's summary line: the run is trained from scratch, resumed from a checkpoint, or cached. */
  then: "trained" | "resumed" | "cached";
  /** In the reduced suite too. */
  ci?: boolean;
}

const CASES: KillCase[] = [
  { spec: "fs.rename:2", then: "trained" }, // dataset cache: train.bin renamed, val.bin written not renamed
  { spec: "run.manifest:1", then: "trained" },
  { spec: "fs.rename:6", then: "trained" }, // manifest.json in place, config.yaml written not renamed
  { spec: "train.step:1", then: "trained" },
  { spec: "train.step:3", then: "resumed", ci: true },
  { spec: "train.eval:2", then: "resumed" },
  { spec: "ckpt.model:2", then: "resumed" },
  { spec: "ckpt.optimizer:3", then: "resumed" },
  { spec: "ckpt.state:1", then: "trained" }, // the only checkpoint complete in its temp dir, not renamed
  { spec: "ckpt.state:4", then: "resumed", ci: true },
  { spec: "ckpt.renamed:4", then: "resumed" },
  { spec: "ckpt.state:6", then: "resumed" }, // final/ complete in its temp dir
  { spec: "ckpt.renamed:6", then: "resumed" }, // final/ in place, older checkpoints not yet pruned
  { spec: "run.metrics:1", then: "resumed" },
  { spec: "run.summary:1", then: "resumed", ci: true },
  { spec: "run.status:1", then: "cached" },
  { spec: "exp.plan:1", then: "cached" },
  { spec: "db.delete:1", then: "cached" },
  { spec: "db.append:1", then: "cached" },
  { spec: "db.commit:1", then: "cached", ci: true },
  { spec: "db.committed:1", then: "cached" },
  { spec: "exp.ingested:1", then: "cached" },
];

let refPromise: Promise<{ dir: string; snap: Snapshot }> | null = null;

/** The uninterrupted run every killed one is compared with (trained once per test module). */
function reference(): Promise<{ dir: string; snap: Snapshot }> {
  refPromise ??= (async () => {
    const dir = await tempResults("kill-ref");
    const o = ok(await cli(dir, EXP), "reference run");
    assert.match(o.stdout, /1 runs: 1 trained/);
    const snap = await snapshot(dir);
    assert.equal(snap.runs.length, 1);
    assert.equal(snap.runs[0].status, "completed");
    assert.ok(snap.metrics.length > 30, `reference has ${snap.metrics.length} metric rows`);
    return { dir, snap };
  })();
  return refPromise;
}

/** After a kill: the dead run is never shown as running, nothing is corrupt. */
async function checkAfterKill(dir: string, what: string): Promise<void> {
  for (const r of await runsJson(dir)) {
    assert.notEqual(r.status, "running", `${what}: a dead run is shown as running`);
    assert.notEqual(r.status, "corrupt", `${what}: ${r.note}`);
  }
}

/** Reruns the command and checks the results equal the reference bit for bit, each run once, no leftovers. */
async function rerunAndCompare(dir: string, what: string, then?: KillCase["then"]): Promise<void> {
  const { snap } = await reference();
  const again = ok(await cli(dir, EXP), `${what}: rerun`);
  if (then) assert.match(again.stdout, new RegExp(`1 runs: 1 ${then}`), `${what}: rerun said\n${again.stdout}`);
  assert.doesNotMatch(again.stderr, /ignoring checkpoint/, `${what}: a checkpoint failed verification`);
  assert.deepEqual(await snapshot(dir), snap, `${what}: results differ from the uninterrupted run`);
  assert.deepEqual(
    await dbRows(dir, "SELECT count(*)::INTEGER AS runs, count(DISTINCT hash)::INTEGER AS hashes FROM runs"),
    [{ runs: 1, hashes: 1 }],
  );
  for (const e of entries(dir)) {
    assert.deepEqual(leftovers(e), [], `${what}: half-written files left in ${e}`);
    const ckpts = [...Deno.readDirSync(`${e}/checkpoints`)].map((x) => x.name);
    assert.deepEqual(ckpts, ["final"], `${what}: checkpoints ${ckpts}`);
  }
}

for (const c of CASES) {
  Deno.test({
    name: `kill: SIGKILL at ${c.spec}; the rerun ${c.then === "cached" ? "finds it cached" : c.then}, bit-identical`,
    ignore: !FULL && !c.ci,
    ...SUITE,
    async fn() {
      await reference();
      const dir = await tempResults("kill");
      killed(await cli(dir, EXP, { env: { FINELAB_FAULT: c.spec } }), c.spec);
      await checkAfterKill(dir, c.spec);
      await rerunAndCompare(dir, c.spec, c.then);
      await cleanup(dir);
    },
  });
}

Deno.test({
  name: "kill: killed twice (the resumed process dies too), then finished: bit-identical, 3 attempts recorded",
  ignore: !FULL,
  ...SUITE,
  async fn() {
    await reference();
    const dir = await tempResults("kill2");
    killed(await cli(dir, EXP, { env: { FINELAB_FAULT: "train.step:3" } }), "train.step:3");
    killed(await cli(dir, EXP, { env: { FINELAB_FAULT: "train.step:4" } }), "train.step:4 (resumed)");
    await checkAfterKill(dir, "twice");
    await rerunAndCompare(dir, "twice", "resumed");
    const [e] = entries(dir);
    const starts = (await readAttempts(entryPaths(`${dir}/cache`, e.split("/").pop()!))).filter((a) =>
      a.event === "start"
    );
    assert.equal(starts.length, 3);
    await cleanup(dir);
  },
});

Deno.test({
  name: "kill: SIGKILL at random times (seeded), then rerun: bit-identical",
  ...SUITE,
  async fn() {
    await reference();
    const seed = Number(Deno.env.get("FINELAB_FAULT_SEED") ?? Date.now() % 100000);
    const rand = prng(seed);
    const n = FULL ? 8 : 2;
    for (let i = 0; i < n; i++) {
      const delay = Math.round(300 + rand() * 2200);
      const what = `random kill ${i + 1}/${n} after ${delay} ms (FINELAB_FAULT_SEED=${seed})`;
      const dir = await tempResults("kill-rand");
      const child = cliCommand(dir, EXP, {}, false).spawn();
      // The child may exit on its own just before the timer fires: then there is nothing left to kill.
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch (e) {
          if (!(e instanceof TypeError && /already terminated/.test(e.message))) throw e;
        }
      }, delay);
      const st = await child.status;
      clearTimeout(timer);
      if (st.signal === "SIGKILL") await checkAfterKill(dir, what);
      await rerunAndCompare(dir, what);
      await cleanup(dir);
    }
  },
});

Deno.test({
  name: "kill: SIGKILL during `db rebuild` (before the swap, before the commit): the old database is intact, " +
    "a second rebuild loses nothing",
  ...SUITE,
  async fn() {
    const { dir: ref, snap } = await reference();
    for (const spec of FULL ? ["db.swap:1", "db.commit:1", "db.append:1"] : ["db.swap:1"]) {
      killed(await cli(ref, ["db", "rebuild"], { env: { FINELAB_FAULT: spec } }), `db rebuild ${spec}`);
      assert.deepEqual(await snapshot(ref), snap, `${spec}: the old database changed`);
      ok(await cli(ref, ["db", "rebuild"]), "rebuild");
      assert.deepEqual(await snapshot(ref), snap, `${spec}: the rebuilt database differs`);
    }
  },
});

Deno.test({
  name: "kill: cleanup of the reference results",
  ...SUITE,
  async fn() {
    if (refPromise) await cleanup((await refPromise).dir);
  },
});
