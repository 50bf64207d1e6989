import assert from "node:assert/strict";
import { generateCache } from "../../bench/store_synth.ts";
import { projectPaths } from "../util/paths.ts";
import { openResults, rebuildFromCache } from "./results.ts";
import { listRecords } from "./cache.ts";
import { tryLock } from "./lock.ts";
import { openStore } from "../store/mod.ts";

/** Every table's rows in a fixed order (JSON text), for comparing two databases' contents. */
async function contents(db: string): Promise<Record<string, string>> {
  const store = await openStore(db, { readOnly: true });
  try {
    const out: Record<string, string> = {};
    for (
      const [t, order] of [["runs", "hash"], ["metrics", "hash, split, name, step"], ["run_metrics", "hash, name"]]
    ) {
      const cols = (await store.query(`SELECT * FROM ${t} LIMIT 0`)).columns.map((c) => c.name)
        .filter((c) => c !== "attempts"); // counted by the rebuild; the Appender ingest below has no entry to count
      const r = await store.query(`SELECT ${cols.join(", ")} FROM ${t} ORDER BY ${order}`);
      out[t] = JSON.stringify(r.rows);
    }
    return out;
  } finally {
    await store.close();
  }
}

Deno.test("db rebuild: a second rebuild has the same rows, and so has an ingest of the parsed records", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finelab-rebuild-" });
  try {
    await generateCache(dir, 25, { experiments: 3, steps: 60 });
    const paths = projectPaths(undefined, dir);
    await rebuildFromCache(paths);
    const first = await contents(paths.db);
    await rebuildFromCache(paths);
    assert.deepEqual(await contents(paths.db), first);
    // The rebuild's metric rows are parsed by DuckDB's JSON reader; these by JSON.parse, appended row by row.
    const other = `${dir}/other.duckdb`;
    const store = await openStore(other);
    try {
      await store.ingest(await listRecords(paths.cache), []);
    } finally {
      await store.close();
    }
    assert.deepEqual(await contents(other), first);
    assert.ok(first.metrics.length > 10_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openResults waits while another process holds the rebuild lock (its swap would lose a write)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finelab-rebuild-lock-" });
  try {
    const paths = projectPaths(undefined, dir);
    await (await openResults(paths)).close();
    const lock = tryLock(`${dir}/.db-rebuild.lock`); // a second open file: to flock, another holder
    assert.ok("release" in lock);
    let released = false;
    const opening = openResults(paths).then((s) => {
      assert.ok(released, "opened while the rebuild lock was held");
      return s;
    });
    await new Promise((r) => setTimeout(r, 500));
    released = true;
    lock.release();
    await (await opening).close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
