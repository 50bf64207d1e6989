import assert from "node:assert/strict";
import { withTempDir } from "../util/testing.ts";
import { openStore, rebuildStore, StoreCorruptError } from "./mod.ts";
import { syntheticRunRecord, TEST_EXPERIMENTS as EXP, twoRuns, withTempStore as withStore } from "./testing.ts";

Deno.test("openStore creates the documented tables and view", async () => {
  await withStore(async (store) => {
    const r = await store.query(
      "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY table_name",
    );
    assert.deepEqual(r.rows.map((x) => x.table_name), [
      "claims",
      "experiment_runs",
      "experiments",
      "finelab_meta",
      "metrics",
      "run_metrics",
      "runs",
    ]);
    const v = await store.query("SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY view_name");
    assert.deepEqual(v.rows.map((x) => x.view_name), ["current_runs", "run_ancestry", "variant_stats"]);
    const m = await store.query("SELECT value FROM finelab_meta WHERE key = 'schema_version'");
    assert.deepEqual(m.rows, [{ value: "1" }]);
  });
});

Deno.test("ingest writes runs, metrics and experiments that query back exactly", async () => {
  await withStore(async (store) => {
    const recs = twoRuns();
    await store.ingest(recs, EXP);
    const runs = await store.query(
      "SELECT hash, variant, seed, status, val_loss, val_ppl, steps_done, tokens_seen, params, git_dirty, created_at " +
        "FROM runs ORDER BY variant",
    );
    assert.equal(runs.rows.length, 2);
    const dense = recs[0];
    assert.deepEqual(runs.rows[0], {
      hash: dense.manifest.hash,
      variant: "dense",
      seed: 0,
      status: "completed",
      val_loss: dense.summary!.val_loss,
      val_ppl: dense.summary!.val_ppl,
      steps_done: 100,
      tokens_seen: 100 * 16 * 128,
      params: 890000,
      git_dirty: false,
      created_at: "2025-01-01T12:00:00.000Z",
    });
    const m = await store.query(
      "SELECT hash, count(*)::INTEGER AS n, sum(value) AS s FROM metrics GROUP BY hash ORDER BY hash",
    );
    for (const rec of recs) {
      const row = m.rows.find((x) => x.hash === rec.manifest.hash)!;
      assert.equal(row.n, rec.metrics.length);
      const sum = rec.metrics.reduce((a, x) => a + x.value, 0);
      assert.ok(Math.abs((row.s as number) - sum) < 1e-9);
    }
    const e = await store.query("SELECT id, n_runs, module FROM experiments");
    assert.deepEqual(e.rows, [{ id: "synthetic", n_runs: 2, module: "experiments/synthetic.ts" }]);
    const cfg = await store.query("SELECT config_json FROM runs WHERE variant = 'finedeep'");
    assert.deepEqual(JSON.parse(cfg.rows[0].config_json as string), recs[1].manifest.config);
  });
});

Deno.test("flattened config columns exist with inferred types; union over runs", async () => {
  await withStore(async (store) => {
    await store.ingest(twoRuns());
    const cols = await store.query(
      "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'runs' ORDER BY column_index",
    );
    const types = Object.fromEntries(cols.rows.map((r) => [r.column_name, r.data_type]));
    assert.equal(types.data_dataset, "VARCHAR");
    assert.equal(types.data_path, "VARCHAR"); // null in every run: typeless, VARCHAR until a value arrives
    assert.equal(types.model_d_model, "DOUBLE");
    assert.equal(types.model_tie_embeddings, "BOOLEAN");
    assert.equal(types.model_ffn_kind, "VARCHAR");
    assert.equal(types.model_ffn_n_experts, "DOUBLE"); // only the finedeep run has it
    assert.equal(types.model_ffn_router, "VARCHAR");
    assert.equal(types.train_lr, "DOUBLE");
    // top-level config keys duplicate fixed columns and are not repeated
    assert.equal(cols.rows.filter((r) => r.column_name === "seed").length, 1);
    assert.equal(types.seed, "BIGINT");
    const r = await store.query("SELECT variant, model_ffn_n_experts, train_lr FROM runs ORDER BY variant");
    assert.deepEqual(r.rows, [
      { variant: "dense", model_ffn_n_experts: null, train_lr: 1e-3 },
      { variant: "finedeep", model_ffn_n_experts: 4, train_lr: 1e-3 },
    ]);
  });
});

Deno.test("re-ingest of the same hash replaces its rows (no duplicates)", async () => {
  await withStore(async (store) => {
    const [a, b] = twoRuns();
    await store.ingest([a, b]);
    const a2 = syntheticRunRecord({ variant: "dense", seed: 0, hash: a.manifest.hash, steps: 40, evalEvery: 10 });
    await store.ingest([a2]);
    const runs = await store.query("SELECT hash, steps_done FROM runs ORDER BY hash");
    assert.equal(runs.rows.length, 2);
    assert.equal(runs.rows.find((r) => r.hash === a.manifest.hash)!.steps_done, 40);
    const m = await store.query(`SELECT count(*) AS n FROM metrics WHERE hash = $h`, { h: a.manifest.hash });
    assert.equal(m.rows[0].n, a2.metrics.length);
    const all = await store.query("SELECT count(*) AS n FROM metrics");
    assert.equal(all.rows[0].n, a2.metrics.length + b.metrics.length);
    // replacing a run in the same ingest that adds a column (ALTER TABLE) works too
    const a3 = syntheticRunRecord({ variant: "dense", seed: 0, hash: a.manifest.hash, steps: 30, evalEvery: 10 });
    const c = syntheticRunRecord({
      variant: "wide",
      edit: (cfg) => Object.assign(cfg.train, { label_smoothing: 0.1 }),
    });
    await store.ingest([a3, c]);
    const r3 = await store.query("SELECT variant, steps_done, train_label_smoothing FROM runs ORDER BY variant");
    assert.deepEqual(r3.rows, [
      { variant: "dense", steps_done: 30, train_label_smoothing: null },
      { variant: "finedeep", steps_done: 100, train_label_smoothing: null },
      { variant: "wide", steps_done: 100, train_label_smoothing: 0.1 },
    ]);
  });
});

Deno.test("a new config key adds a column; a type change widens it", async () => {
  await withStore(async (store) => {
    await store.ingest([syntheticRunRecord({ variant: "dense" })]);
    const later = syntheticRunRecord({
      variant: "moe",
      ffn: { kind: "moe", top_k: 2, capacity: [1, 2] },
      edit: (c) => {
        c.data.max_tokens = 5000; // was null: the all-NULL VARCHAR column takes the new type
      },
    });
    await store.ingest([later]);
    const cols = await store.query(
      "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'runs' " +
        "AND column_name IN ('model_ffn_top_k', 'model_ffn_capacity', 'data_max_tokens') ORDER BY column_name",
    );
    assert.deepEqual(cols.rows, [
      { column_name: "data_max_tokens", data_type: "DOUBLE" },
      { column_name: "model_ffn_capacity", data_type: "VARCHAR" },
      { column_name: "model_ffn_top_k", data_type: "DOUBLE" },
    ]);
    const r = await store.query("SELECT model_ffn_top_k, model_ffn_capacity FROM runs WHERE variant = 'moe'");
    assert.deepEqual(r.rows, [{ model_ffn_top_k: 2, model_ffn_capacity: "[1,2]" }]);
    // top_k becomes a string in a third run: the column widens to VARCHAR and keeps the old value as text
    await store.ingest([syntheticRunRecord({ variant: "moe2", ffn: { kind: "moe", top_k: "auto" } })]);
    const w = await store.query("SELECT variant, model_ffn_top_k FROM runs WHERE variant LIKE 'moe%' ORDER BY variant");
    assert.equal(w.columns[1].type, "VARCHAR");
    assert.deepEqual(w.rows.map((x) => x.model_ffn_top_k), ["2.0", "auto"]);
  });
});

Deno.test("a failing ingest leaves no partial rows", async () => {
  await withStore(async (store) => {
    const [a, b] = twoRuns();
    await store.ingest([a]);
    const bad = structuredClone(b);
    bad.metrics[5].step = 1.5; // not an integer: rejected by the metrics appender, after runs were appended
    const a2 = syntheticRunRecord({ variant: "dense", seed: 0, hash: a.manifest.hash, steps: 40 });
    await assert.rejects(store.ingest([a2, bad]), /metrics\.jsonl row 6, field step: expected a 32-bit integer/);
    const runs = await store.query("SELECT hash, steps_done FROM runs");
    assert.deepEqual(runs.rows, [{ hash: a.manifest.hash, steps_done: 100 }]);
    const m = await store.query("SELECT count(*) AS n FROM metrics");
    assert.equal(m.rows[0].n, a.metrics.length);
  });
});

Deno.test("failed and running runs: NULL metrics, failure columns, extra metrics long table", async () => {
  await withStore(async (store) => {
    await store.ingest([
      syntheticRunRecord({ variant: "x", status: "failed", extra: { nsar: 0.25, router_entropy: 1.5 } }),
      syntheticRunRecord({ variant: "y", status: "running" }),
    ]);
    const r = await store.query(
      "SELECT variant, status, val_ppl, failure_step, failure_reason, finished_at FROM runs ORDER BY variant",
    );
    assert.deepEqual(r.rows, [
      {
        variant: "x",
        status: "failed",
        val_ppl: null,
        failure_step: 60,
        failure_reason: "loss is NaN",
        finished_at: "2025-01-01T12:05:00.000Z",
      },
      { variant: "y", status: "running", val_ppl: null, failure_step: null, failure_reason: null, finished_at: null },
    ]);
    const x = await store.query("SELECT name, value FROM run_metrics ORDER BY name");
    assert.deepEqual(x.rows, [{ name: "nsar", value: 0.25 }, { name: "router_entropy", value: 1.5 }]);
  });
});

Deno.test("BIGINT values: numbers when safe, strings otherwise; NULL stays null", async () => {
  await withStore(async (store) => {
    const r = await store.query(
      "SELECT 42::BIGINT AS a, 9007199254740993::BIGINT AS b, NULL::BIGINT AS c, count(*) AS n, " +
        "1.25::DECIMAL(5,2) AS d, 'nan'::DOUBLE AS e, DATE '2024-02-03' AS f, [1, 2]::BIGINT[] AS g FROM range(3)",
    );
    assert.deepEqual(r.columns.map((c) => c.type), [
      "BIGINT",
      "BIGINT",
      "BIGINT",
      "BIGINT",
      "DECIMAL(5,2)",
      "DOUBLE",
      "DATE",
      "BIGINT[]",
    ]);
    assert.deepEqual(r.rows, [{
      a: 42,
      b: "9007199254740993",
      c: null,
      n: 3,
      d: 1.25,
      e: "NaN",
      f: "2024-02-03",
      g: [1, 2],
    }]);
    JSON.stringify(r); // must not throw
  });
});

Deno.test("a bad SQL query rejects with DuckDB's message and the store stays usable", async () => {
  await withStore(async (store) => {
    await assert.rejects(store.query("SELEC 1"), /Parser Error: syntax error at or near "SELEC"/);
    await assert.rejects(store.query("SELECT nope FROM runs"), /Binder Error: Referenced column "nope" not found/);
    const r = await store.query("SELECT 1 AS one");
    assert.deepEqual(r.rows, [{ one: 1 }]);
  });
});

Deno.test("rebuild gives the same query results as incremental ingest, via a rename", async () => {
  await withTempDir("finelab_store_", async (dir) => {
    const recs = [
      ...twoRuns(),
      syntheticRunRecord({ variant: "dense", seed: 1 }),
      syntheticRunRecord({ variant: "moe", ffn: { kind: "moe", top_k: 2 }, extra: { nsar: 0.5 } }),
    ];
    const a = await openStore(`${dir}/a.duckdb`);
    await a.ingest(recs.slice(0, 2), EXP);
    await a.ingest(recs.slice(2), EXP);
    const b = await openStore(`${dir}/b.duckdb`);
    await b.ingest([syntheticRunRecord({ variant: "stale" })]); // rebuild must drop this
    const inoBefore = (await Deno.stat(`${dir}/b.duckdb`)).ino;
    await b.rebuild(recs, EXP);
    assert.notEqual((await Deno.stat(`${dir}/b.duckdb`)).ino, inoBefore); // a new file was renamed in
    const queries = [
      "SELECT * EXCLUDE (updated_at) FROM experiments",
      "SELECT * FROM runs ORDER BY hash",
      "SELECT * FROM metrics ORDER BY hash, split, name, step",
      "SELECT * FROM run_metrics ORDER BY hash, name",
      "SELECT * FROM variant_stats ORDER BY variant",
      "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'runs' ORDER BY column_name",
    ];
    for (const q of queries) assert.deepEqual(await b.query(q), await a.query(q), q);
    const left = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes("rebuild"));
    assert.deepEqual(left, []);
    await a.close();
    await b.close();
  });
});

Deno.test("one instance per file per process: handles share data; close is per handle", async () => {
  await withTempDir("finelab_store_", async (dir) => {
    const path = `${dir}/r.duckdb`;
    const [s1, s2] = await Promise.all([openStore(path), openStore(`${dir}/./r.duckdb`)]);
    await s1.ingest(twoRuns());
    assert.equal((await s2.query("SELECT count(*) AS n FROM runs")).rows[0].n, 2);
    await s1.close();
    assert.equal((await s2.query("SELECT count(*) AS n FROM runs")).rows[0].n, 2);
    await assert.rejects(s1.query("SELECT 1"), /is closed/);
    await s2.close();
    const ro = await openStore(path, { readOnly: true });
    await assert.rejects(ro.ingest(twoRuns()), /opened read-only/);
    assert.equal((await ro.query("SELECT count(*) AS n FROM runs")).rows[0].n, 2);
    await ro.close();
  });
});

Deno.test("a corrupt file gives a clear error; rebuildStore replaces it", async () => {
  await withTempDir("finelab_store_", async (dir) => {
    const path = `${dir}/results.duckdb`;
    await Deno.writeTextFile(path, "this is not a database ".repeat(100));
    const err = await openStore(path).then(() => null, (e) => e);
    assert.ok(err instanceof StoreCorruptError, String(err));
    assert.match(err.message, /not a valid DuckDB database/);
    assert.match(err.message, /deno task db rebuild/);
    await rebuildStore(path, { records: twoRuns(), experiments: EXP });
    const s = await openStore(path, { readOnly: true });
    assert.equal((await s.query("SELECT count(*) AS n FROM runs")).rows[0].n, 2);
    await s.close();
  });
});

Deno.test("read-only open of a missing database says how to create it", async () => {
  await withTempDir("finelab_store_", async (dir) => {
    await assert.rejects(
      openStore(`${dir}/none.duckdb`, { readOnly: true }),
      /no results database at .*none\.duckdb yet/,
    );
  });
});

/** Starts the lib/store/testdata script `script` with `args`; resolves once its stdout has printed `marker`. */
