import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "./mod.ts";
import { type BenchRow, ingestBenchFiles, insertBench } from "./bench.ts";

function row(over: Partial<BenchRow> = {}): BenchRow {
  return {
    bench_id: "20260101T000000Z",
    measured_at: "2026-01-01T00:00:01.000Z",
    backend: "native",
    ffn: "dense",
    repeat: 0,
    threads: 1,
    steps: 10,
    warmup: 2,
    batch_size: 16,
    seq_len: 128,
    params: 885888,
    median_ms: 200,
    min_ms: 190,
    max_ms: 230,
    tokens_per_sec: 10240,
    gflops: 62.5,
    mfu: 0.37,
    peak_gflops: 170,
    peak_method: "fma",
    peak_rss_bytes: 300 * 2 ** 20,
    self_cores: 0.98,
    load_avg_1m: 1.5,
    final_loss: 3.5,
    losses_json: "[5.5,3.5]",
    backend_json: '{"blas":"openblas"}',
    cpu: "test cpu",
    cpus: 2,
    os: "linux",
    deno: "2.9.6",
    git_commit: null,
    ...over,
  };
}

Deno.test("bench table: rows round-trip, the same key replaces, result files re-ingest", async () => {
  const dir = await Deno.makeTempDir();
  const store = await openStore(join(dir, "r.duckdb"));
  try {
    await insertBench(store, [row(), row({ backend: "torch", median_ms: 250 }), row({ repeat: 1, median_ms: 210 })]);
    await insertBench(store, [row({ median_ms: 205 })]); // same (bench_id, backend, ffn, repeat): replaced
    const r = await store.query(
      "SELECT backend, repeat, median_ms, peak_rss_bytes::DOUBLE AS rss, git_commit FROM bench ORDER BY backend, repeat",
    );
    const rows = r.rows.map((x) => [x.backend, Number(x.repeat), Number(x.median_ms), Number(x.rss), x.git_commit]);
    assert.deepEqual(rows, [
      ["native", 0, 205, 300 * 2 ** 20, null],
      ["native", 1, 210, 300 * 2 ** 20, null],
      ["torch", 0, 250, 300 * 2 ** 20, null],
    ]);
    const files = join(dir, "bench");
    await Deno.mkdir(files);
    await Deno.writeTextFile(join(files, "b.json"), JSON.stringify({ bench_id: "x", rows: [row({ bench_id: "x" })] }));
    assert.equal(await ingestBenchFiles(store, files), 1);
    assert.equal(await ingestBenchFiles(store, join(dir, "missing")), 0);
    const n = await store.query("SELECT count(*)::INT AS n FROM bench");
    assert.equal(Number(n.rows[0].n), 4);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
