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
import { resolve } from "node:path";
import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import { atomicWrite, atomicWriteJson } from "../util/fs.ts";
import { faultPoint } from "../util/fault.ts";
import type { MetricRow, RunManifest, RunRecord, RunStatusRecord, RunSummary } from "../core/records.ts";
import { isLocked } from "./lock.ts";
import { hostname } from "node:os";

/** Paths of one cache entry. */
export interface EntryPaths {
  dir: string;
  manifest: string;
  config: string;
  status: string;
  summary: string;
  metrics: string;
  lock: string;
  attempts: string;
}

/** Paths of the entry for `hash` under `cacheRoot`. */
export function entryPaths(cacheRoot: string, hash: string): EntryPaths {
  const dir = resolve(cacheRoot, hash);
  return {
    dir,
    manifest: `${dir}/manifest.json`,
    config: `${dir}/config.yaml`,
    status: `${dir}/status.json`,
    summary: `${dir}/summary.json`,
    metrics: `${dir}/metrics.jsonl`,
    lock: `${dir}/lock`,
    attempts: `${dir}/attempts.jsonl`,
  };
}

/** Files a started run's status vouches for. */
export const STARTED_FILES = ["manifest.json", "config.yaml"] as const;
/** Files a finished run's status vouches for in addition. */
export const RESULT_FILES = ["summary.json", "metrics.jsonl"] as const;

const sha256 = (b: Uint8Array | string) => createHash("sha256").update(b).digest("hex");

/** sha256 hex of each named file of the entry (a missing file throws). */
export async function fileChecksums(p: EntryPaths, names: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of names) out[n] = sha256(await Deno.readFile(`${p.dir}/${n}`));
  return out;
}

/** sha256 of a status record's canonical JSON without its `sha256` field. */
function statusDigest(s: RunStatusRecord): string {
  const { sha256: _, ...rest } = s;
  return sha256(canonicalize(rest)!);
}

/** Returns `s` with its self-checksum set (what {@link writeStatus} writes). */
export function sealStatus(s: RunStatusRecord): RunStatusRecord {
  const out = JSON.parse(JSON.stringify(s)) as RunStatusRecord; // exactly what the file will hold
  delete out.sha256;
  return { ...out, sha256: statusDigest(out) };
}

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
  const out: AttemptEvent[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line));
    } catch { /* torn line */ }
  }
  return out;
}

function parseMetrics(text: string): MetricRow[] {
  return text.split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as MetricRow);
}

/** Reads metrics.jsonl (empty when absent). Not verified: use {@link inspectEntry} for results. */
export async function readMetrics(p: EntryPaths): Promise<MetricRow[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(p.metrics);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return parseMetrics(text);
}

/** What {@link inspectEntry} found. */
export interface EntryState {
  /** The verified record; null when the entry is not a run (no files) or is corrupt. */
  record: RunRecord | null;
  /** Why the entry cannot be trusted (empty when it can). */
  problems: string[];
  /** The verified metrics.jsonl text of a finished run, with {@link InspectOptions.rawMetrics}. */
  metricsText?: string;
}

async function readBytes(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function parseJson<T>(bytes: Uint8Array, name: string, problems: string[]): T | null {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)) as T;
  } catch (e) {
    problems.push(`${name} does not parse (${(e as Error).message.split("\n")[0]})`);
    return null;
  }
}

/** Options of {@link inspectEntry}. */
export interface InspectOptions {
  /**
   * Verify metrics.jsonl by its checksum but leave it unparsed: `record.metrics` is empty and the verified
   * text is in {@link EntryState.metricsText} (the database rebuild hands it to DuckDB's JSON reader in bulk).
   */
  rawMetrics?: boolean;
}

/**
 * Reads and verifies a cache entry. A run with no status yet (killed right after its manifest)
 * is `queued`; a `running` one keeps that status (callers derive `interrupted` from the lock).
 * Results (summary, metrics) are returned only for a finished run whose status vouches for them.
 */
export async function inspectEntry(p: EntryPaths, opts: InspectOptions = {}): Promise<EntryState> {
  const problems: string[] = [];
  const bytes = {
    manifest: await readBytes(p.manifest),
    status: await readBytes(p.status),
  };
  if (bytes.manifest === null) {
    if (bytes.status !== null) problems.push("manifest.json is missing");
    return { record: null, problems };
  }
  const manifest = parseJson<RunManifest>(bytes.manifest, "manifest.json", problems);
  if (bytes.status === null) {
    if (problems.length) return { record: null, problems };
    // Killed between writing the manifest and the first status: nothing ran yet.
    return { record: { manifest: manifest!, status: emptyStatus("queued"), summary: null, metrics: [] }, problems };
  }
  const status = parseJson<RunStatusRecord>(bytes.status, "status.json", problems);
  if (status) {
    if (typeof status.sha256 !== "string") problems.push("status.json has no checksum (written by an older finelab)");
    else if (statusDigest(status) !== status.sha256) problems.push("status.json does not match its own sha256");
  }
  if (problems.length) return { record: null, problems };
  const files = status!.files ?? {};
  const finished = status!.status === "completed" || status!.status === "failed" || status!.status === "diverged";
  const required = finished ? [...STARTED_FILES, ...RESULT_FILES] : [...STARTED_FILES];
  for (const n of required) if (!(n in files)) problems.push(`status.json vouches for no ${n}`);
  const content = new Map<string, Uint8Array>();
  for (const [n, want] of Object.entries(files)) {
    const b = n === "manifest.json" ? bytes.manifest : await readBytes(`${p.dir}/${n}`);
    if (b === null) {
      problems.push(`${n} is missing`);
      continue;
    }
    const got = sha256(b);
    if (got !== want) {
      problems.push(
        `${n} has sha256 ${got.slice(0, 12)}…, status.json says ${want.slice(0, 12)}… (truncated or altered)`,
      );
    }
    content.set(n, b);
  }
  if (problems.length) return { record: null, problems };
  let summary: RunSummary | null = null, metrics: MetricRow[] = [], metricsText: string | undefined;
  if (finished) {
    summary = parseJson<RunSummary>(content.get("summary.json")!, "summary.json", problems);
    try {
      const text = new TextDecoder("utf-8", { fatal: true }).decode(content.get("metrics.jsonl")!);
      if (opts.rawMetrics) metricsText = text;
      else metrics = parseMetrics(text);
    } catch (e) {
      problems.push(`metrics.jsonl does not parse (${(e as Error).message})`);
    }
    if (problems.length) return { record: null, problems };
  }
  return { record: { manifest: manifest!, status: status!, summary, metrics }, problems, metricsText };
}

/** Raised when a cache entry that should hold results fails verification. */
export class CorruptEntryError extends Error {
  /** The entry's directory. */
  readonly dir: string;
  /** What is wrong with it. */
  readonly problems: string[];
  /** Builds the error. */
  constructor(dir: string, problems: string[]) {
    super(`cache entry ${dir} is corrupt: ${problems.join("; ")}`);
    this.name = "CorruptEntryError";
    this.dir = dir;
    this.problems = problems;
  }
}

/** Reads a verified entry; null when it is not a run. Throws {@link CorruptEntryError} when it is corrupt. */
export async function readRecord(p: EntryPaths): Promise<RunRecord | null> {
  const s = await inspectEntry(p);
  if (s.problems.length) throw new CorruptEntryError(p.dir, s.problems);
  return s.record;
}

/** True when the entry holds a finished run (completed, or failed with a summary) whose every checksum matches. */
export async function isFinished(p: EntryPaths): Promise<boolean> {
  const { record } = await inspectEntry(p);
  const s = record?.status.status;
  return record !== null && (s === "completed" || s === "failed" || s === "diverged") &&
    record.summary !== null;
}

/** Options of {@link listRecords}. */
export interface ListOptions {
  /** Called for each corrupt entry (it is left out of the list). */
  onCorrupt?: (dir: string, problems: string[]) => void;
}

/** Names of the run directories (64 hex digits) under `cacheRoot`, sorted; none when it does not exist. */
export async function entryNames(cacheRoot: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(cacheRoot)) {
      if (e.isDirectory && /^[0-9a-f]{64}$/.test(e.name)) names.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return names.sort();
}

/** Maps `items` through `fn` with at most `width` calls in flight (results in input order). */
export async function mapPool<T, U>(items: readonly T[], width: number, fn: (x: T) => Promise<U>): Promise<U[]> {
  const out = new Array<U>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}

/**
 * Every verified entry in the cache (sorted by hash), skipping dirs that are not runs and corrupt ones.
 * Entries are read a few at a time (file reads overlap; checksums and parsing stay on this thread).
 */
export async function listRecords(cacheRoot: string, opts: ListOptions = {}): Promise<RunRecord[]> {
  const names = await entryNames(cacheRoot);
  const states = await mapPool(names, 16, (n) => inspectEntry(entryPaths(cacheRoot, n)));
  const out: RunRecord[] = [];
  states.forEach((s, i) => {
    if (s.problems.length) opts.onCorrupt?.(entryPaths(cacheRoot, names[i]).dir, s.problems);
    else if (s.record) out.push(s.record);
  });
  return out;
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

/** A status record with nothing filled in. */
export function emptyStatus(status: RunStatusRecord["status"]): RunStatusRecord {
  return { status, pid: null, hostname: null, heartbeat_at: null, started_at: null, finished_at: null, step: null };
}
