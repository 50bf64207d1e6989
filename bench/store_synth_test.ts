import assert from "node:assert/strict";
import { generateCache } from "./store_synth.ts";
import { projectPaths } from "../lib/util/paths.ts";
import { entryPaths, inspectEntry, listRecords, liveStatus } from "../lib/runner/cache.ts";
import { planGc } from "../lib/runner/gc.ts";
import { withTempDir } from "../lib/util/testing.ts";
import { rebuildFromCache, runsRows } from "../lib/runner/results.ts";
import { openStore } from "../lib/store/mod.ts";

Deno.test("synthetic cache entries pass every check of the cache, `runs` and `db rebuild`", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finelab-synth-" });
  try {
    const rep = await generateCache(dir, 40, { experiments: 4, steps: 60 });
    assert.deepEqual(rep.hashes.length, 40);
    const paths = projectPaths(undefined, dir);
    const corrupt: string[] = [];
    const records = await listRecords(paths.cache, { onCorrupt: (d) => corrupt.push(d) });
    assert.deepEqual(corrupt, []);
    assert.deepEqual(records.length, 40);
    const finished = records.filter((r) => r.summary !== null);
    assert.ok(finished.every((r) => r.metrics.length > 0 && r.metrics.every((m) => Number.isFinite(m.value))));
    const rows = await runsRows(paths);
    assert.deepEqual(rows.length, 40);
    assert.deepEqual(rows.filter((r) => r.status === "corrupt"), []);
    // Runs recorded as running by a process that is gone read as interrupted.
    assert.deepEqual(rows.filter((r) => r.status === "running"), []);
    assert.deepEqual((await runsRows(paths, { experiment: "synth-0001" })).length, 10);

    const report = await rebuildFromCache(paths);
    assert.deepEqual(report.corrupt, []);
    assert.deepEqual(report.runs, 40);
    assert.deepEqual(report.metrics, finished.reduce((a, r) => a + r.metrics.length, 0));
    const store = await openStore(paths.db, { readOnly: true });
    try {
      const n = await store.query(
        `SELECT (SELECT count(*) FROM runs)::INTEGER AS runs, (SELECT count(*) FROM current_runs)::INTEGER AS cur,
                (SELECT count(DISTINCT experiment) FROM experiment_runs)::INTEGER AS exps`,
      );
      assert.deepEqual(n.rows[0], { runs: 40, cur: 40, exps: 4 });
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gc over 2,100 synthetic entries (two batches) (verified on Workers) lists what one-thread inspection finds: unfinished and damaged entries", async () => {
  await withTempDir("synth-gc", async (dir) => {
    const rep = await generateCache(dir, 2100, { experiments: 5, steps: 12 });
    const paths = projectPaths(undefined, dir);
    const damaged = entryPaths(paths.cache, rep.hashes[2050]);
    await Deno.writeTextFile(damaged.metrics, '{"step":0,"split":"train","name":"loss","value":1}\n', { append: true });
    // The reference: each entry inspected on this thread, metrics parsed (what gc did before the Workers).
    const expected: string[] = [];
    for (const h of rep.hashes) {
      const p = entryPaths(paths.cache, h);
      const { record, problems } = await inspectEntry(p);
      if (problems.length || !record || liveStatus(record.status, p) !== "completed") expected.push(p.dir);
    }
    assert.ok(expected.includes(damaged.dir) && expected.length > 1 && expected.length < 2100);
    const items = await planGc(paths.cache);
    assert.deepEqual(items.map((it) => it.path).sort(), expected.sort());
    const bad = items.find((it) => it.path === damaged.dir)!;
    assert.match(bad.reason, /^corrupt \(.*metrics\.jsonl.*\): the next exp retrains it$/);
  });
});
