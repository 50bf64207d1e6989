/**
 * Where `db rebuild` spends its time: the phases of a rebuild of the first `--limit` entries of a cache, each
 * timed alone (wall and this process's CPU seconds): listing the cache, reading the files, verifying the
 * entries as the rebuild does (checksums, JSON), and separately the pieces of that verification (sha256,
 * JSON.parse of the manifests, UTF-8 decoding of metrics.jsonl), then the database side: the runs rows
 * (Appender), the metrics rows (read_json of the metrics files, as the rebuild does) and the final CHECKPOINT.
 *
 *   deno run -A bench/store_rebuild_profile.ts <results-dir> [--limit 20000] [--batch 2000]
 *
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { dirname } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { entryNames, entryPaths, inspectEntry, mapPool } from "../lib/runner/cache.ts";
import { ensureSchema, ingestInto } from "../lib/store/ingest.ts";
import { sha256Hex } from "../lib/core/hash.ts";
import type { RunRecord } from "../lib/core/records.ts";

/** Wall and CPU seconds of `fn`. */
async function phase<T>(name: string, out: Record<string, unknown>, fn: () => Promise<T> | T): Promise<T> {
  const c0 = process.cpuUsage(), t0 = performance.now();
  const v = await fn();
  const c = process.cpuUsage(c0);
  out[name] = { wall_s: +((performance.now() - t0) / 1000).toFixed(2), cpu_s: +((c.user + c.system) / 1e6).toFixed(2) };
  console.error(name, JSON.stringify(out[name]));
  return v;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { limit: { type: "string", default: "20000" }, batch: { type: "string", default: "2000" } },
  });
  const results = positionals[0];
  const cache = `${results}/cache`;
  const out: Record<string, unknown> = { results, load_start: Deno.loadavg()[0] };
  const names = (await phase("list", out, () => entryNames(cache))).slice(0, Number(values.limit));
  out.entries = names.length;
  const files = ["manifest.json", "status.json", "config.yaml", "summary.json", "metrics.jsonl", "attempts.jsonl"];
  const bytes = await phase("read_files", out, () =>
    mapPool(names, 16, (n) => {
      const p = entryPaths(cache, n);
      return Promise.all(files.map((f) => Deno.readFile(`${p.dir}/${f}`).catch(() => new Uint8Array())));
    }));
  out.bytes_per_entry = Object.fromEntries(
    files.map((f, i) => [f, Math.round(bytes.reduce((s, b) => s + b[i].length, 0) / names.length)]),
  );
  await phase("sha256_all_files", out, () => {
    for (const b of bytes) for (const x of b) sha256Hex(x);
  });
  await phase("json_parse_manifests", out, () => {
    const d = new TextDecoder();
    for (const b of bytes) JSON.parse(d.decode(b[0]));
  });
  await phase("utf8_decode_metrics", out, () => {
    const d = new TextDecoder("utf-8", { fatal: true });
    for (const b of bytes) d.decode(b[4]);
  });
  bytes.length = 0;
  const states = await phase(
    "verify_entries",
    out,
    () => mapPool(names, 16, (n) => inspectEntry(entryPaths(cache, n), { rawMetrics: true })),
  );
  const records: RunRecord[] = states.map((s) => s.record!).filter(Boolean);
  const metricFiles = new Map(
    states.filter((s) => s.record && s.metricsVerified).map((s) => [
      s.record!.manifest.hash,
      entryPaths(cache, s.record!.manifest.hash).metrics,
    ]),
  );
  states.length = 0;
  const db = `${await Deno.makeTempDir({ prefix: "finelab-rebuild-profile-" })}/profile.duckdb`;
  const inst = await DuckDBInstance.create(db);
  const conn = await inst.connect();
  try {
    await ensureSchema(conn, db);
    const B = Number(values.batch);
    await phase("db_runs_appender", out, async () => {
      for (let i = 0; i < records.length; i += B) {
        await ingestInto(conn, { records: records.slice(i, i + B), experiments: [], fresh: true });
      }
    });
    const mf = [...metricFiles];
    await phase("db_metrics_read_json", out, async () => {
      for (let i = 0; i < mf.length; i += B) {
        await ingestInto(conn, { records: [], experiments: [], fresh: true, metricFiles: new Map(mf.slice(i, i + B)) });
      }
    });
    await phase("db_checkpoint", out, () => conn.run("CHECKPOINT"));
    out.db_bytes_per_run = Math.round(Deno.statSync(db).size / records.length);
  } finally {
    conn.closeSync();
    inst.closeSync();
    await Deno.remove(dirname(db), { recursive: true }).catch(() => {});
  }
  out.load_end = Deno.loadavg()[0];
  console.log(JSON.stringify(out, null, 2));
}
