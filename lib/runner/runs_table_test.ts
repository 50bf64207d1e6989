import assert from "node:assert/strict";
import { DuckDBInstance } from "@duckdb/node-api";
import { generateCache } from "../../bench/store_synth.ts";
import { projectPaths } from "../util/paths.ts";
import { formatFloat, formatResult } from "../store/format.ts";
import type { QueryResult } from "../store/result.ts";
import { openStore } from "../store/mod.ts";
import { rebuildFromCache } from "./results.ts";
import { runsListing } from "./runs.ts";
import { floatSql, RUNS_COLUMNS, runsTable } from "./runs_table.ts";
import { addTags } from "./tags.ts";

/** The table format's text of every row of the listing (what runsTable must equal). */
async function inJs(paths: ReturnType<typeof projectPaths>, experiment?: string): Promise<string> {
  const { rows } = await runsListing(paths, { experiment });
  return formatResult({ columns: RUNS_COLUMNS, rows } as unknown as QueryResult, "table");
}

Deno.test("runs table: DuckDB writes floats as formatFloat does", async () => {
  const special = [0, 1, -1, 1e-4, 9.99999e-5, 1.23456789e-7, 123456.7, 99999.95, 1e5, 1e15, 1.5e15, -2.5e20, 42];
  let seed = 7;
  const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const values = [...special, Math.PI, 0.1 + 0.2, 2 / 3, 1e300, 5e-324, -123.456e-9, NaN, Infinity, -Infinity];
  for (let i = 0; i < 3000; i++) values.push((rand() - 0.5) * 10 ** Math.floor(rand() * 40 - 20));
  const lit = (
    v: number,
  ) => (Number.isNaN(v) ? "'nan'" : v === Infinity ? "'inf'" : v === -Infinity ? "'-inf'" : `${v}`);
  const inst = await DuckDBInstance.create(":memory:");
  const conn = await inst.connect();
  try {
    const r = await conn.runAndReadAll(
      `SELECT ${floatSql("x")} FROM (VALUES ${values.map((v, i) => `(${i}, ${lit(v)}::DOUBLE)`).join(", ")}) t(i, x)
       ORDER BY i`,
    );
    assert.deepEqual(r.getColumnsJS()[0], values.map(formatFloat));
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
});

Deno.test("runs table: every row as the table format lays it out, newest first; null where it cannot", async () => {
  const dir = await Deno.makeTempDir({ prefix: "finelab-runs-table-" });
  try {
    const rep = await generateCache(dir, 40, { experiments: 2, steps: 40 });
    const paths = projectPaths(undefined, dir);
    assert.equal(await runsTable(paths), null, "no database");
    await rebuildFromCache(paths);
    // Text to escape and cut in stored runs (failure notes), tags, an entry only in the cache (read there).
    await addTags(paths, "first-try", [{ hash: rep.hashes[3], experiment: "synth-0001", run_id: "x" }]);
    await addTags(paths, "b", [{ hash: rep.hashes[3], experiment: "synth-0001", run_id: "x" }]);
    const store = await openStore(paths.db);
    try {
      await store.query(
        `UPDATE runs SET failure_reason = 'loss is NaN' || chr(9) || 'at step 3' || chr(13) || chr(10) || ` +
          `repeat('x', 70) WHERE status = 'failed'`,
      );
      await store.query(`DELETE FROM runs WHERE hash = '${rep.hashes[7]}'`);
    } finally {
      await store.close();
    }
    for (const experiment of [undefined, "synth-0001", "none"]) {
      const text = await runsTable(paths, { experiment });
      assert.ok(text !== null, `laid out by DuckDB (${experiment})`);
      assert.equal(text, await inJs(paths, experiment), `experiment ${experiment}`);
    }
    const all = (await runsTable(paths))!;
    assert.match(all, /loss is NaN\\tat step 3\\nxxx+…/);
    assert.match(all, /\| first-try,b \|/);
    assert.match(all, /\(40 rows\)\n$/);
    // Text DuckDB could count otherwise: laid out in JS instead.
    const again = await openStore(paths.db);
    try {
      await again.query(`UPDATE runs SET run_id = 'v0/ś0' WHERE hash = '${rep.hashes[0]}'`);
    } finally {
      await again.close();
    }
    assert.equal(await runsTable(paths), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
