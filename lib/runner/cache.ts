/**
 * The run cache: `results/cache/<hash>/`, one directory per run hash, the source of
 * truth for every result (the DuckDB store is rebuilt from it). File formats are in
 * records.ts.
 *
 * Crash and corruption safety:
 * - every file is written atomically (temp file, fsync, rename), so a reader sees an old or a new
 *   file, never half of one;
 * - `status.json` is the entry's commit record and is written last: it carries the sha256 of
 *   manifest.json and config.yaml (from the start) and of summary.json and metrics.jsonl (once the
 *   run ended), plus a sha256 of itself;
 * - {@link inspectEntry} checks all of them before anything is read as a result. A run counts as
 *   finished only when every checksum matches; a truncated or bit-flipped file makes the entry
 *   `corrupt`: it is retrained (resuming from its verified checkpoints), never loaded.
 *
 * @module
 */
import { stringify as toYaml } from "yaml";
import { atomicWrite, atomicWriteJson } from "../util/fs.ts";
import { faultPoint } from "../util/fault.ts";
import type { MetricRow, RunManifest, RunRecord, RunStatusRecord, RunSummary } from "../core/records.ts";
import { isLocked } from "./lock.ts";
import { hostname } from "node:os";
import { sha256Hex as sha256 } from "../core/hash.ts";
import { type EntryPaths, sealStatus } from "./cache_entry.ts";

// Entry paths, checksums and verified reading live in cache_entry.ts; importers keep using this module.
export * from "./cache_entry.ts";

/** Writes manifest.json and config.yaml (the resolved config, for humans). */
export async function writeManifest(p: EntryPaths, m: RunManifest): Promise<void> {
  await atomicWriteJson(p.manifest, m);
  const header = `# finelab run ${m.hash}\n# ${m.experiment} ${m.run_id}; resolved config (all defaults applied)\n`;
  await atomicWrite(p.config, header + toYaml(m.config));
}

/** Writes status.json, sealed with its own sha256. */
export function writeStatus(p: EntryPaths, s: RunStatusRecord): Promise<void> {
  return atomicWriteJson(p.status, sealStatus(s));
}

/** Synchronous {@link writeStatus}, for signal handlers (temp file + rename, no await). */
export function writeStatusSync(p: EntryPaths, s: RunStatusRecord): void {
  const tmp = `${p.status}.tmp-sig-${Deno.pid}`;
  Deno.writeTextFileSync(tmp, JSON.stringify(sealStatus(s), null, 2) + "\n");
  Deno.renameSync(tmp, p.status);
}

const metricLines = (rows: readonly MetricRow[]) => rows.map((r) => JSON.stringify(r) + "\n").join("");

/**
 * Writes the final results: metrics.jsonl, then summary.json, and returns their sha256 (to put
 * into the final status, which the caller writes after this).
 */
export async function writeResults(
  p: EntryPaths,
  summary: RunSummary,
  metrics: MetricRow[],
): Promise<Record<string, string>> {
  const text = metricLines(metrics);
  await atomicWrite(p.metrics, text);
  faultPoint("run.metrics");
  const json = JSON.stringify(summary, null, 2) + "\n";
  await atomicWrite(p.summary, json);
  faultPoint("run.summary");
  return { "metrics.jsonl": sha256(text), "summary.json": sha256(json) };
}

/**
 * metrics.jsonl while a run trains, for live views (the dashboard): `start` rewrites the file with the
 * rows restored from the checkpoint an attempt resumes from (dropping rows a killed attempt logged after
 * it, which the resumed attempt logs again: no duplicates), `append` adds rows as they are logged. The
 * final {@link writeResults} rewrites the file atomically with the same rows and checksums it. Appends
 * are not fsynced: the file is a live view until the final status vouches for it.
 */
export function liveMetricsSink(p: EntryPaths): {
  start(rows: readonly MetricRow[]): Promise<void>;
  append(rows: readonly MetricRow[]): Promise<void>;
} {
  return {
    start: (rows) => atomicWrite(p.metrics, metricLines(rows)),
    async append(rows) {
      if (!rows.length) return;
      const f = await Deno.open(p.metrics, { append: true, create: true });
      try {
        const bytes = new TextEncoder().encode(metricLines(rows));
        let off = 0;
        while (off < bytes.length) off += await f.write(bytes.subarray(off));
      } finally {
        f.close();
      }
    },
  };
}

/** One line of attempts.jsonl. */
export interface AttemptEvent {
  event: "start" | "end";
  pid: number;
  hostname: string;
  at: string;
  /** end only: steps done. */
  step?: number;
  /** end only: completed, failed, error, or interrupted (SIGINT/SIGTERM). */
  outcome?: "completed" | "failed" | "diverged" | "error" | "interrupted";
  /** end only: failure reason or error message. */
  detail?: string | null;
}

/** Appends one event to attempts.jsonl (one write of one line; a torn last line is ignored on read). */
export async function appendAttempt(p: EntryPaths, e: AttemptEvent): Promise<void> {
  const f = await Deno.open(p.attempts, { append: true, create: true });
  try {
    await f.write(new TextEncoder().encode(JSON.stringify(e) + "\n"));
  } finally {
    f.close();
  }
}

/** {@link appendAttempt} for signal handlers, which must finish before the process exits. */
export function appendAttemptSync(p: EntryPaths, e: AttemptEvent): void {
  Deno.writeTextFileSync(p.attempts, JSON.stringify(e) + "\n", { append: true, create: true });
}

/** The entry's attempt history (lines that do not parse, e.g. torn by a crash, are skipped). */
export async function readAttempts(p: EntryPaths): Promise<AttemptEvent[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(p.attempts);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return parseAttempts(text);
}

function parseAttempts(text: string): AttemptEvent[] {
  const out: AttemptEvent[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line));
    } catch { /* torn line */ }
  }
  return out;
}

/** Training attempts the entry has started (`start` events of attempts.jsonl; 0 without the file). */
export async function countAttempts(p: EntryPaths): Promise<number> {
  return (await readAttempts(p)).filter((a) => a.event === "start").length;
}

/** {@link countAttempts} with a blocking read (the database rebuild reads entries this way). */
export function countAttemptsSync(p: EntryPaths): number {
  let text = "";
  try {
    text = Deno.readTextFileSync(p.attempts);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
  return parseAttempts(text).filter((a) => a.event === "start").length;
}

/** Removes temp files a crash left in the entry (`*.tmp-*`); call only while holding the run's lock. */
export async function removeTempFiles(p: EntryPaths): Promise<string[]> {
  const removed: string[] = [];
  try {
    for await (const e of Deno.readDir(p.dir)) {
      if (e.isFile && /\.tmp-/.test(e.name)) {
        await Deno.remove(`${p.dir}/${e.name}`).catch(() => {});
        removed.push(e.name);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return removed;
}

/** Seconds between heartbeats of a training run (status.json `heartbeat_at`). */
export const HEARTBEAT_S = 10;
/** A run on another host whose heartbeat is older than this is taken for dead (its lock cannot be probed). */
export const STALE_AFTER_S = 12 * HEARTBEAT_S;

/**
 * The live status of a `running` record: `interrupted` when its process is gone, never running
 * forever. On this host the run's flock decides (the kernel drops it the moment the owner dies,
 * SIGKILL included); a run recorded by another host (e.g. a shared file system, where flock may
 * not reach) counts as dead once its heartbeat is older than {@link STALE_AFTER_S}.
 */
export function liveStatus(s: RunStatusRecord, p: EntryPaths, now = Date.now()): RunStatusRecord["status"] {
  if (s.status !== "running") return s.status;
  if (!s.hostname || s.hostname === hostname()) return isLocked(p.lock) ? "running" : "interrupted";
  const beat = s.heartbeat_at ? Date.parse(s.heartbeat_at) : NaN;
  return Number.isFinite(beat) && now - beat < STALE_AFTER_S * 1000 ? "running" : "interrupted";
}

/** The record with its {@link liveStatus}. */
export function withLiveStatus(r: RunRecord, p: EntryPaths): RunRecord {
  const status = liveStatus(r.status, p);
  return status === r.status.status ? r : { ...r, status: { ...r.status, status } };
}
