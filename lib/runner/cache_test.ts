import assert from "node:assert/strict";
import { syntheticRunRecord } from "../store/testing.ts";
import {
  appendAttempt,
  CorruptEntryError,
  entryPaths,
  fileChecksums,
  inspectEntry,
  isFinished,
  listRecords,
  liveStatus,
  readAttempts,
  readRecord,
  STALE_AFTER_S,
  STARTED_FILES,
  writeManifest,
  writeResults,
  writeStatus,
} from "./cache.ts";
import { tryLock } from "./lock.ts";
import type { RunRecord, RunStatusRecord } from "../core/records.ts";
import { hostname } from "node:os";

/** Writes a finished entry the way the runner does; returns its paths and the record. */
async function finishedEntry(root: string, rec: RunRecord = syntheticRunRecord({ steps: 20, evalEvery: 5 })) {
  const p = entryPaths(root, rec.manifest.hash);
  await Deno.mkdir(p.dir, { recursive: true });
  await writeManifest(p, rec.manifest);
  const started = await fileChecksums(p, STARTED_FILES);
  const sums = await writeResults(p, rec.summary!, rec.metrics);
  await writeStatus(p, { ...rec.status, files: { ...started, ...sums } });
  return { p, rec };
}

async function editDigit(path: string, after: string): Promise<void> {
  const t = await Deno.readTextFile(path);
  const i = t.indexOf(after) + after.length;
  const j = [...t.slice(i)].findIndex((c) => c >= "0" && c <= "9") + i;
  await Deno.writeTextFile(path, t.slice(0, j) + String((Number(t[j]) + 1) % 10) + t.slice(j + 1));
}

Deno.test("inspectEntry: a finished entry verifies and reads back exactly", async () => {
  const root = await Deno.makeTempDir();
  const { p, rec } = await finishedEntry(root);
  const s = await inspectEntry(p);
  assert.deepEqual(s.problems, []);
  assert.deepEqual(s.record!.summary, rec.summary);
  assert.deepEqual(s.record!.metrics, rec.metrics);
  assert.deepEqual(s.record!.manifest, rec.manifest);
  assert.equal(s.record!.status.status, "completed");
  assert.ok(await isFinished(p));
  await Deno.remove(root, { recursive: true });
});

Deno.test("inspectEntry: one changed digit or a cut in any file makes the entry corrupt, never finished", async () => {
  const cases: [string, (p: ReturnType<typeof entryPaths>) => Promise<void>, RegExp][] = [
    ["metrics value", (p) => editDigit(p.metrics, '"value":'), /metrics\.jsonl has sha256/],
    ["summary val_loss", (p) => editDigit(p.summary, '"val_loss":'), /summary\.json has sha256/],
    ["manifest seed", (p) => editDigit(p.manifest, '"seed":'), /manifest\.json has sha256/],
    ["config.yaml", (p) => editDigit(p.config, "d_model:"), /config\.yaml has sha256/],
    ["status step", (p) => editDigit(p.status, '"step":'), /status\.json does not match its own sha256/],
    ["status cut", async (p) => await Deno.writeTextFile(p.status, '{"status": "compl'), /status\.json does not parse/],
    ["metrics cut", async (p) => {
      const t = await Deno.readTextFile(p.metrics);
      await Deno.writeTextFile(p.metrics, t.slice(0, t.length / 2));
    }, /metrics\.jsonl has sha256/],
    ["summary gone", (p) => Deno.remove(p.summary), /summary\.json is missing/],
  ];
  for (const [what, damage, why] of cases) {
    const root = await Deno.makeTempDir();
    const { p } = await finishedEntry(root);
    await damage(p);
    const s = await inspectEntry(p);
    assert.equal(s.record, null, what);
    assert.match(s.problems.join("; "), why, what);
    assert.equal(await isFinished(p), false, what);
    await assert.rejects(() => readRecord(p), CorruptEntryError, what);
    const skipped: string[] = [];
    assert.deepEqual(await listRecords(root, { onCorrupt: (dir) => skipped.push(dir) }), [], what);
    assert.deepEqual(skipped, [p.dir], what);
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("inspectEntry: an unsealed status (older finelab) is not trusted; no status yet = queued", async () => {
  const root = await Deno.makeTempDir();
  const { p } = await finishedEntry(root);
  const s = JSON.parse(await Deno.readTextFile(p.status));
  delete s.sha256;
  await Deno.writeTextFile(p.status, JSON.stringify(s));
  assert.match((await inspectEntry(p)).problems[0], /no checksum/);
  await Deno.remove(p.status);
  const q = await inspectEntry(p);
  assert.deepEqual(q.problems, []);
  assert.equal(q.record!.status.status, "queued");
  assert.equal(q.record!.summary, null);
  await Deno.remove(root, { recursive: true });
});

Deno.test("inspectEntry: results left by a killed attempt are not read while the status says running", async () => {
  const root = await Deno.makeTempDir();
  const { p, rec } = await finishedEntry(root);
  const files = await fileChecksums(p, STARTED_FILES);
  await writeStatus(p, { ...rec.status, status: "running", files });
  const s = await inspectEntry(p);
  assert.deepEqual(s.problems, []);
  assert.equal(s.record!.summary, null);
  assert.deepEqual(s.record!.metrics, []);
  assert.equal(await isFinished(p), false);
  await Deno.remove(root, { recursive: true });
});

Deno.test("liveStatus: running only while its process holds the lock, or (other host) while its heartbeat is fresh", async () => {
  const root = await Deno.makeTempDir();
  const p = entryPaths(root, "a".repeat(64));
  await Deno.mkdir(p.dir, { recursive: true });
  const now = Date.now();
  const s: RunStatusRecord = {
    status: "running",
    pid: 1,
    hostname: hostname(),
    heartbeat_at: new Date(now).toISOString(),
    started_at: null,
    finished_at: null,
    step: 3,
  };
  assert.equal(liveStatus(s, p), "interrupted"); // nobody holds the lock
  const lock = tryLock(p.lock);
  assert.ok("release" in lock);
  assert.equal(liveStatus(s, p), "running");
  lock.release();
  assert.equal(liveStatus(s, p), "interrupted");
  const other = { ...s, hostname: "elsewhere" };
  assert.equal(liveStatus(other, p, now + 1000), "running");
  assert.equal(liveStatus(other, p, now + (STALE_AFTER_S + 1) * 1000), "interrupted");
  assert.equal(liveStatus({ ...s, status: "completed" }, p), "completed");
  await Deno.remove(root, { recursive: true });
});

Deno.test("attempts.jsonl: appended per attempt; a torn last line is ignored", async () => {
  const root = await Deno.makeTempDir();
  const p = entryPaths(root, "b".repeat(64));
  await Deno.mkdir(p.dir, { recursive: true });
  await appendAttempt(p, { event: "start", pid: 1, hostname: "h", at: "2025-01-01T00:00:00Z" });
  await appendAttempt(p, {
    event: "end",
    pid: 1,
    hostname: "h",
    at: "2025-01-01T00:01:00Z",
    step: 4,
    outcome: "completed",
  });
  await Deno.writeTextFile(p.attempts, '{"event":"sta', { append: true });
  const a = await readAttempts(p);
  assert.deepEqual(a.map((x) => x.event), ["start", "end"]);
  assert.equal(a[1].step, 4);
  await Deno.remove(root, { recursive: true });
});
