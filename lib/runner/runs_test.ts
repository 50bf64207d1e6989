import assert from "node:assert/strict";
import { generateCache } from "../../bench/store_synth.ts";
import { projectPaths } from "../util/paths.ts";
import { rebuildFromCache } from "./results.ts";
import { listedNames, runsListing, runsRows } from "./runs.ts";
import { entryNames } from "./cache.ts";

/** A synthetic results folder of `n` verified entries (bench/store_synth.ts), removed after `fn`. */
async function withSynth(n: number, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "finelab-runs-" });
  try {
    await generateCache(dir, n, { experiments: 3, steps: 40 });
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("runs: the database's rows of finished runs equal the verified listing of every entry", async () => {
  await withSynth(30, async (dir) => {
    const paths = projectPaths(undefined, dir);
    const verified = await runsRows(paths, { verify: true });
    assert.deepEqual(await runsRows(paths), verified, "without a database every entry is read");
    await rebuildFromCache(paths);
    assert.deepEqual(await runsRows(paths), verified);
    assert.deepEqual(await runsRows(paths), verified, "again, with the recorded listing");
    assert.ok(verified.some((r) => r.status === "failed" && r.note) && verified.some((r) => r.attempts > 0));
    for (const experiment of ["synth-0000", "synth-0002", "none"]) {
      const want = verified.filter((r) => r.experiment === experiment);
      assert.deepEqual(await runsRows(paths, { experiment }), want);
      assert.deepEqual(await runsRows(paths, { experiment, verify: true }), want);
    }
  });
});

Deno.test("runs: a finished entry damaged after ingest is listed from the database; --verify reports it corrupt", async () => {
  await withSynth(12, async (dir) => {
    const paths = projectPaths(undefined, dir);
    await rebuildFromCache(paths);
    const before = await runsRows(paths);
    const i = before.findIndex((r) => r.status === "completed");
    const [name] = (await entryNames(paths.cache)).filter((n) => n.startsWith(before[i].hash));
    const metrics = `${paths.cache}/${name}/metrics.jsonl`;
    const text = await Deno.readTextFile(metrics);
    await Deno.writeTextFile(metrics, text.replace('"loss"', '"lose"'));
    assert.deepEqual(await runsRows(paths), before);
    const verified = await runsRows(paths, { verify: true });
    assert.equal(verified[i].status, "corrupt");
    assert.match(verified[i].note!, /metrics\.jsonl has sha256 .* \(truncated or altered\)/);
    // A rebuild leaves the corrupt entry out of the database: from then on `runs` reads it, and reports it, too.
    const report = await rebuildFromCache(paths);
    assert.equal(report.corrupt.length, 1);
    assert.deepEqual(await runsRows(paths), verified);
  });
});

Deno.test("runs: entries added or removed after the listing was recorded are seen", async () => {
  await withSynth(8, async (dir) => {
    const paths = projectPaths(undefined, dir);
    await rebuildFromCache(paths);
    const names = await entryNames(paths.cache);
    assert.deepEqual(await listedNames(paths), names);
    assert.match(await Deno.readTextFile(`${dir}/.cache-listing`), new RegExp(names[0]));
    // A run another process is training: not in the database yet, read from its entry.
    const other = await Deno.makeTempDir({ prefix: "finelab-runs-other-" });
    try {
      const rep = await generateCache(other, 1, { experiments: 1, seed: 99, steps: 40 });
      await Deno.rename(`${other}/cache/${rep.hashes[0]}`, `${paths.cache}/${rep.hashes[0]}`);
      const rows = await runsRows(paths);
      assert.equal(rows.length, 9);
      assert.ok(rows.some((r) => rep.hashes[0].startsWith(r.hash)));
      assert.deepEqual(rows, await runsRows(paths, { verify: true }));
    } finally {
      await Deno.remove(other, { recursive: true });
    }
    await Deno.remove(`${paths.cache}/${names[0]}`, { recursive: true });
    const rows = await runsRows(paths);
    assert.equal(rows.length, 8);
    assert.ok(!rows.some((r) => names[0].startsWith(r.hash)));
    assert.deepEqual(await listedNames(paths), await entryNames(paths.cache));
  });
});

Deno.test("runs: the listing is newest first, cut at the limit, with every entry counted", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finelab-runs-" });
  try {
    // Synthetic runs finish one minute apart in generation order: the newest is the last generated.
    const rep = await generateCache(dir, 20, { experiments: 2, steps: 40 });
    const paths = projectPaths(undefined, dir);
    const newest = rep.hashes.toReversed().map((h) => h.slice(0, 12));
    const all = await runsRows(paths, { verify: true });
    const counts: Record<string, number> = {};
    for (const r of all) counts[r.status] = (counts[r.status] ?? 0) + 1;
    for (const stage of ["cache only", "database"]) {
      if (stage === "database") await rebuildFromCache(paths);
      for (const verify of [false, true]) {
        const l = await runsListing(paths, { limit: 5, verify });
        assert.deepEqual(l.rows.map((r) => r.hash), newest.slice(0, 5), `${stage}, verify ${verify}`);
        assert.equal(l.total, 20);
        assert.deepEqual(l.counts, counts);
        const full = await runsListing(paths, { verify });
        assert.deepEqual(full.rows.map((r) => r.hash), newest);
        assert.deepEqual(full.rows.toSorted((a, b) => a.hash.localeCompare(b.hash)), all);
        const one = await runsListing(paths, { experiment: "synth-0001", limit: 3, verify });
        assert.deepEqual(one.rows, full.rows.filter((r) => r.experiment === "synth-0001").slice(0, 3));
        assert.equal(one.total, 10);
      }
    }
    // A corrupt entry has no time: it comes first (found by --verify: the database still has the run).
    const [name] = (await entryNames(paths.cache)).filter((n) => n.startsWith(newest[10]));
    await Deno.writeTextFile(`${paths.cache}/${name}/manifest.json`, "{");
    const l = await runsListing(paths, { limit: 2, verify: true });
    assert.deepEqual(l.rows.map((r) => [r.hash, r.status]), [[newest[10], "corrupt"], [
      newest[0],
      all.find((r) => r.hash === newest[0])!.status,
    ]]);
    assert.equal(l.counts.corrupt, 1);
    await assert.rejects(() => runsListing(paths, { limit: -1 }), RangeError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
