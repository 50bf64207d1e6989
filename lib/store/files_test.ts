import assert from "node:assert/strict";
import { withTempDir } from "../util/testing.ts";
import { resolve } from "node:path";
import { openStore, StoreLockedError } from "./mod.ts";
import { syntheticRunRecord, TEST_EXPERIMENTS as EXP, twoRuns, withTempStore as withStore } from "./testing.ts";
import { REPO_ROOT } from "../util/paths.ts";

// Files and processes: locks held by other processes, killed writers, files of older schemas. The ingest and query
// tests are in mod_test.ts.

async function startUntil(script: string, args: string[], marker: string): Promise<Deno.ChildProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-ffi",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      resolve(REPO_ROOT, `lib/store/testdata/${script}`),
      ...args,
    ],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes(marker)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${script} exited early: ${out}`);
    out += value;
  }
  reader.releaseLock();
  return child;
}

/** Starts testdata/hold_lock.ts holding `path` for `ms`; resolves once it holds the lock. */
async function holdLock(path: string, ms: number): Promise<Deno.ChildProcess> {
  const child = await startUntil("hold_lock.ts", [path, String(ms)], "locked");
  child.stdout.cancel().catch(() => {});
  return child;
}

Deno.test("a file locked by another process: retried, then a clear error naming the holder", async () => {
  await withTempDir("finelab_store_", async (dir) => {
    const path = `${dir}/results.duckdb`;
    const s = await openStore(path);
    await s.close();
    // held longer than our timeout: gives up with the holder's PID
    const holder = await holdLock(path, 3000);
    const t0 = Date.now();
    const err = await openStore(path, { lockTimeoutMs: 400 }).then(() => null, (e) => e);
    assert.ok(err instanceof StoreLockedError, String(err));
    assert.ok(Date.now() - t0 >= 300, "should have retried for about the timeout");
    assert.match(err.message, new RegExp(`locked by another process: .*\\(PID ${holder.pid}\\)`));
    assert.equal(err.holder?.endsWith(`(PID ${holder.pid})`), true);
    await holder.status;
    // held shorter than our timeout: the retry succeeds
    const short = await holdLock(path, 600);
    const s2 = await openStore(path, { lockTimeoutMs: 20_000 });
    assert.deepEqual((await s2.query("SELECT 1 AS x")).rows, [{ x: 1 }]);
    await s2.close();
    await short.status;
  });
});

Deno.test("current_runs shows exactly the runs of each experiment's latest plan", async () => {
  await withStore(async (store) => {
    const recs = twoRuns();
    const [a, b] = recs.map((r) => ({ hash: r.manifest.hash, run_id: r.manifest.run_id }));
    const exp = (runs: typeof a[], scale: string) => ({
      ...EXP[0],
      id: recs[0].manifest.experiment,
      plan: { scale, runs },
    });
    await store.ingest(recs, [exp([a, b], "default")]);
    const q = "SELECT hash, scale FROM current_runs ORDER BY hash";
    assert.deepEqual(
      (await store.query(q)).rows,
      [a, b].map((x) => ({ hash: x.hash, scale: "default" })).sort((x, y) => x.hash < y.hash ? -1 : 1),
    );
    await store.ingest([], [exp([b], "tiny")]);
    assert.deepEqual((await store.query(q)).rows, [{ hash: b.hash, scale: "tiny" }]);
    assert.equal(
      (await store.query("SELECT count(*)::INTEGER AS n FROM runs")).rows[0].n,
      2,
      "older runs stay in runs",
    );
  });
});

Deno.test("a database written before the inference-speed columns gets them in place; values round-trip", async () => {
  await withTempDir("finelab_store_", async (dir) => {
    const path = `${dir}/results.duckdb`;
    const s1 = await openStore(path);
    await s1.ingest([syntheticRunRecord({ variant: "old" })]);
    // Simulate a file from before the columns existed (and before the schema digest).
    await s1.query("DELETE FROM finelab_meta WHERE key = 'schema_digest'");
    for (const c of ["prefill_tokens_per_sec", "decode_tokens_per_sec"]) {
      await s1.query(`ALTER TABLE runs DROP COLUMN ${c}`);
    }
    await s1.close();
    const s2 = await openStore(path);
    try {
      await s2.ingest([syntheticRunRecord({ variant: "new" })]);
      const r = await s2.query(
        "SELECT variant, prefill_tokens_per_sec AS p, decode_tokens_per_sec AS d FROM runs ORDER BY variant",
      );
      assert.deepEqual(r.rows, [{ variant: "new", p: 5678.5, d: 91.25 }, { variant: "old", p: null, d: null }]);
    } finally {
      await s2.close();
    }
  });
});

Deno.test("parent_hash records init_from; run_ancestry walks the chain to every ancestor", async () => {
  await withStore(async (store) => {
    const root = syntheticRunRecord({ variant: "dense", seed: 0 });
    const child = (variant: string, parent: string) => {
      const r = syntheticRunRecord({ variant, seed: 0 });
      r.manifest.hash_inputs.parent = { [`synthetic/${variant}-parent`]: parent };
      return r;
    };
    const mid = child("moe", root.manifest.hash), leaf = child("moe-cont", mid.manifest.hash);
    await store.ingest([root, mid, leaf], EXP);
    const p = await store.query("SELECT variant, parent_hash FROM runs ORDER BY variant");
    assert.deepEqual(p.rows, [
      { variant: "dense", parent_hash: null },
      { variant: "moe", parent_hash: root.manifest.hash },
      { variant: "moe-cont", parent_hash: mid.manifest.hash },
    ]);
    const a = await store.query(
      "SELECT r.variant AS ancestor, a.depth FROM run_ancestry a JOIN runs r ON r.hash = a.ancestor " +
        "WHERE a.hash = $h ORDER BY a.depth",
      { h: leaf.manifest.hash },
    );
    assert.deepEqual(a.rows, [{ ancestor: "moe", depth: 1 }, { ancestor: "dense", depth: 2 }]);
    const n = await store.query("SELECT count(*)::INTEGER AS n FROM run_ancestry WHERE hash = $h", {
      h: root.manifest.hash,
    });
    assert.equal(n.rows[0].n, 0, "a seeded run has no ancestors");
  });
});

Deno.test("close leaves the WAL (no checkpoint); a writer killed after its ingest loses nothing", async () => {
  await withTempDir("finelab_store_", async (dir) => {
    const path = `${dir}/results.duckdb`;
    const s = await openStore(path);
    await s.ingest([syntheticRunRecord({ variant: "closed" })]);
    await s.close();
    assert.ok((await Deno.stat(`${path}.wal`)).size > 0, "the ingest is in the WAL, not checkpointed on close");
    const child = await startUntil("ingest_and_die.ts", [path, "killed"], "ingested");
    child.kill("SIGKILL");
    await child.status;
    child.stdout.cancel().catch(() => {});
    for (const readOnly of [true, false]) {
      const s2 = await openStore(path, { readOnly });
      try {
        const r = await s2.query("SELECT variant, count(*)::INTEGER AS n FROM runs GROUP BY variant ORDER BY variant");
        assert.deepEqual(r.rows, [{ variant: "closed", n: 1 }, { variant: "killed", n: 1 }], `readOnly ${readOnly}`);
        const m = await s2.query("SELECT count(*)::INTEGER AS n FROM metrics");
        assert.ok(Number(m.rows[0].n) > 0);
      } finally {
        await s2.close();
      }
    }
  });
});

Deno.test("a database with the old primary key on runs.hash loses it in place; rows, views and re-ingest work", async () => {
  await withTempDir("finelab_store_", async (dir) => {
    const path = `${dir}/results.duckdb`;
    const [a, b] = twoRuns();
    const s1 = await openStore(path);
    await s1.ingest([a, b], [{
      ...EXP[0],
      id: a.manifest.experiment,
      plan: { scale: "tiny", runs: [a, b].map((r) => ({ hash: r.manifest.hash, run_id: r.manifest.run_id })) },
    }]);
    // Simulate a file written before: runs.hash was the primary key, and there was no schema digest.
    await s1.query("ALTER TABLE runs ADD PRIMARY KEY (hash)");
    await s1.query("DELETE FROM finelab_meta WHERE key = 'schema_digest'");
    const keys = "SELECT count(*)::INTEGER AS n FROM duckdb_constraints() WHERE table_name = 'runs' " +
      "AND constraint_type = 'PRIMARY KEY'";
    assert.equal((await s1.query(keys)).rows[0].n, 1);
    await s1.close();
    const s2 = await openStore(path);
    try {
      assert.equal((await s2.query(keys)).rows[0].n, 0, "the key is gone");
      const q = "SELECT hash, variant FROM current_runs ORDER BY hash";
      const want = [a, b].map((r) => ({ hash: r.manifest.hash, variant: r.manifest.variant }))
        .sort((x, y) => x.hash < y.hash ? -1 : 1);
      assert.deepEqual((await s2.query(q)).rows, want);
      await s2.ingest([a]);
      await s2.ingest([a, a]);
      assert.deepEqual((await s2.query(q)).rows, want, "still one row per hash");
      const m = await s2.query("SELECT count(*)::INTEGER AS n FROM metrics");
      assert.equal(m.rows[0].n, a.metrics.length + b.metrics.length);
    } finally {
      await s2.close();
    }
  });
});

Deno.test("ingest is idempotent: the same runs ingested again leave the same rows", async () => {
  await withStore(async (store) => {
    const recs = twoRuns();
    const snapshot = async () => ({
      runs: (await store.query("SELECT * EXCLUDE (config_json) FROM runs ORDER BY hash")).rows,
      metrics: (await store.query("SELECT * FROM metrics ORDER BY hash, step, split, name")).rows,
      extra: (await store.query("SELECT * FROM run_metrics ORDER BY hash, name")).rows,
    });
    await store.ingest(recs, EXP);
    const once = await snapshot();
    assert.equal(once.runs.length, 2);
    await store.ingest(recs, EXP);
    await store.ingest([recs[1], recs[0], recs[1]]);
    assert.deepEqual(await snapshot(), once);
  });
});

Deno.test("opening a file whose schema digest matches skips the DDL; another digest runs it again", async () => {
  await withTempDir("finelab_store_", async (dir) => {
    const path = `${dir}/results.duckdb`;
    const views = "SELECT view_name FROM duckdb_views() WHERE NOT internal AND view_name = 'variant_stats'";
    const s1 = await openStore(path);
    await s1.query("DROP VIEW variant_stats");
    await s1.close();
    const s2 = await openStore(path);
    assert.equal((await s2.query(views)).rows.length, 0, "same digest: DDL skipped");
    await s2.query("UPDATE finelab_meta SET value = 'older' WHERE key = 'schema_digest'");
    await s2.close();
    const s3 = await openStore(path);
    try {
      assert.equal((await s3.query(views)).rows.length, 1, "other digest: DDL run");
      const d = await s3.query("SELECT value FROM finelab_meta WHERE key = 'schema_digest'");
      assert.match(String(d.rows[0].value), /^[0-9a-f]{64}$/);
    } finally {
      await s3.close();
    }
  });
});
