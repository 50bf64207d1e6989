import assert from "node:assert/strict";
import { openStore } from "./mod.ts";
import { openReadOnly, queryReadOnly, QueryRefusedError, QuerySqlError } from "./readonly.ts";
import { syntheticRunRecord } from "./testing.ts";

/** A results folder with a database of 3 synthetic runs and a CSV file inside it. */
async function fixture(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "finelab_ro_" });
  const store = await openStore(`${dir}/results.duckdb`);
  await store.ingest([0, 1, 2].map((seed) => syntheticRunRecord({ experiment: "e", seed, steps: 10 })));
  await store.close();
  await Deno.writeTextFile(`${dir}/notes.csv`, "a,b\n1,2\n");
  return dir;
}

const T = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  name: "readonly: SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN run; several statements each return a result",
  ...T,
  async fn() {
    const dir = await fixture();
    try {
      const [r] = await queryReadOnly(dir, "SELECT count(*)::INTEGER AS n FROM runs WHERE experiment = 'e'");
      assert.deepEqual(r.result.rows, [{ n: 3 }]);
      assert.equal(r.type, "SELECT");
      const db = await openReadOnly(dir);
      try {
        const all = await db.run(
          "SELECT 1 AS a; DESCRIBE runs; SHOW TABLES; SUMMARIZE runs; EXPLAIN SELECT 1; -- trailing comment\n" +
            "SELECT seed FROM runs ORDER BY seed",
        );
        assert.deepEqual(all.map((s) => [s.index, s.type]), [
          [1, "SELECT"],
          [2, "SELECT"],
          [3, "SELECT"],
          [4, "SELECT"],
          [5, "EXPLAIN"],
          [6, "SELECT"],
        ]);
        assert.deepEqual(all[0].result.rows, [{ a: 1 }]);
        assert.ok(all[1].result.rows.some((row) => row.column_name === "val_ppl"));
        assert.ok(all[2].result.rows.some((row) => row.name === "runs"));
        assert.deepEqual(all[5].result.rows, [{ seed: 0 }, { seed: 1 }, { seed: 2 }]);
        // a file inside the results folder can be read; $params bind a single statement
        const [csv] = await db.run("SELECT * FROM read_csv($f)", { f: `${dir}/notes.csv` });
        assert.deepEqual(csv.result.rows, [{ a: 1, b: 2 }]);
      } finally {
        db.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Bad inputs of the read-only console: each one refused with its reason, nothing changed or written. */
export const REFUSED: [string, RegExp][] = [
  ["DELETE FROM runs", /\(DELETE\): it writes to the database/],
  ["INSERT INTO experiments (id) VALUES ('x')", /\(INSERT\): it writes/],
  ["UPDATE runs SET val_ppl = 0", /\(UPDATE\): it writes/],
  ["DROP TABLE runs", /\(DROP\): it changes the schema/],
  ["CREATE TEMP TABLE t AS SELECT 1", /\(CREATE\): it changes the schema/],
  ["ALTER TABLE runs ADD COLUMN x INTEGER", /\(ALTER\): it changes the schema/],
  [
    "COPY runs TO '/tmp/finelab_evil.csv'",
    /refused file access outside the results folder: Cannot access file "\/tmp\/finelab_evil\.csv"/,
  ],
  ["COPY runs TO '{dir}/inside.csv'", /\(COPY\): it copies data/],
  ["EXPORT DATABASE '/tmp/finelab_evil_export'", /refused file access outside the results folder/],
  ["ATTACH '/tmp/finelab_evil.duckdb'", /\(ATTACH\): it attaches/],
  ["INSTALL httpfs", /\(LOAD\): it installs or loads extensions/],
  ["LOAD httpfs", /\(LOAD\): it installs or loads extensions/],
  ["SET enable_external_access = true", /\(SET\): it changes settings/],
  ["BEGIN TRANSACTION", /\(TRANSACTION\)/],
  [
    "SELECT * FROM read_csv('/etc/passwd')",
    /refused file access outside the results folder: Cannot access file "\/etc\/passwd"/,
  ],
  ["SELECT * FROM glob('/etc/*')", /refused file access outside the results folder/],
  ["SELECT 1; DELETE FROM runs; SELECT 2", /refused statement 2 of 3 \(DELETE\)/],
];

Deno.test({
  name: "readonly: writes, DDL, COPY, ATTACH, INSTALL/LOAD, SET and outside files are refused; nothing runs",
  ...T,
  async fn() {
    const dir = await fixture();
    try {
      const before = await Deno.readFile(`${dir}/results.duckdb`);
      // The writer's WAL (not checkpointed on close) may be there: read, never changed, by a read-only open.
      const files = () => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
      const listing = files();
      const wal = listing.includes("results.duckdb.wal") ? await Deno.readFile(`${dir}/results.duckdb.wal`) : null;
      const db = await openReadOnly(dir);
      try {
        for (const [sql, re] of REFUSED) {
          const q = sql.replace("{dir}", dir);
          await assert.rejects(db.run(q), (e: Error) => {
            assert.ok(e instanceof QueryRefusedError, `${q}: ${e.name}: ${e.message}`);
            assert.match(e.message, re, q);
            assert.match(e.message, /read-only/);
            return true;
          });
        }
        const [n] = await db.run("SELECT count(*)::INTEGER AS n FROM runs");
        assert.deepEqual(n.result.rows, [{ n: 3 }], "no row deleted");
      } finally {
        db.close();
      }
      for (const f of ["/tmp/finelab_evil.csv", "/tmp/finelab_evil.duckdb", "/tmp/finelab_evil_export"]) {
        assert.throws(() => Deno.statSync(f), Deno.errors.NotFound, `${f} must not exist`);
      }
      assert.deepEqual(files(), listing, "no file created or removed");
      assert.deepEqual(await Deno.readFile(`${dir}/results.duckdb`), before, "database file unchanged");
      if (wal) assert.deepEqual(await Deno.readFile(`${dir}/results.duckdb.wal`), wal, "WAL unchanged");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "readonly: SQL errors are QuerySqlError with DuckDB's message and the statement's position",
  ...T,
  async fn() {
    const dir = await fixture();
    try {
      const cases: [string, RegExp][] = [
        ["SELEC 1", /syntax error at or near "SELEC"/],
        ["SELECT nope FROM runs", /Referenced column "nope" not found/],
        ["SELECT 1; SELECT * FROM nope", /statement 2 of 2: Catalog Error: Table with name nope does not exist/],
        ["   ", /empty SQL statement/],
        [";;", /no SQL statement/],
      ];
      for (const [sql, re] of cases) {
        await assert.rejects(queryReadOnly(dir, sql), (e: Error) => e instanceof QuerySqlError && re.test(e.message));
      }
      await assert.rejects(queryReadOnly(`${dir}/missing`, "SELECT 1"), /no results database at .*missing/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
