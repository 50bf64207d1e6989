/**
 * Run-cache entries as stored: their paths, the checksums that seal them, and reading them back verified
 * ({@link inspectEntry}) and in bulk ({@link listRecords}). Writing entries (status, results, attempts) and
 * their live status are in cache.ts, which re-exports everything here.
 *
 * @module
 */
import { resolve } from "node:path";
import canonicalize from "canonicalize";
import { sha256Hex as sha256 } from "../core/hash.ts";
import type { MetricRow, RunManifest, RunRecord, RunStatusRecord, RunSummary } from "../core/records.ts";

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
  /** Set for a finished run with {@link InspectOptions.rawMetrics}: metrics.jsonl matched its checksum, unparsed. */
  metricsVerified?: true;
}

async function readBytes(path: string, blocking = false): Promise<Uint8Array | null> {
  try {
    return blocking ? Deno.readFileSync(path) : await Deno.readFile(path);
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
   * Verify metrics.jsonl by its checksum but leave it unparsed: `record.metrics` is empty and
   * {@link EntryState.metricsVerified} is set (the database rebuild hands the file to DuckDB's JSON reader in bulk).
   */
  rawMetrics?: boolean;
  /**
   * Read the files with blocking reads: about half the CPU time of async reads of small files, at the cost of
   * holding this thread (the database rebuild verifies a batch while DuckDB ingests the previous one).
   */
  blocking?: boolean;
}

/**
 * Reads and verifies a cache entry. A run with no status yet (killed right after its manifest)
 * is `queued`; a `running` one keeps that status (callers derive `interrupted` from the lock).
 * Results (summary, metrics) are returned only for a finished run whose status vouches for them.
 */
export async function inspectEntry(p: EntryPaths, opts: InspectOptions = {}): Promise<EntryState> {
  const problems: string[] = [];
  const bytes = {
    manifest: await readBytes(p.manifest, opts.blocking),
    status: await readBytes(p.status, opts.blocking),
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
    const b = n === "manifest.json" ? bytes.manifest : await readBytes(`${p.dir}/${n}`, opts.blocking);
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
  let summary: RunSummary | null = null, metrics: MetricRow[] = [], metricsVerified: true | undefined;
  if (finished) {
    summary = parseJson<RunSummary>(content.get("summary.json")!, "summary.json", problems);
    // With rawMetrics the checksum is the check: the bytes are those the runner wrote (from a JS string, so
    // UTF-8), and DuckDB's JSON reader, which parses them, rejects anything else. Not decoding them here
    // spares a rebuild 2.5 GB of strings per 100k runs.
    if (opts.rawMetrics) metricsVerified = true;
    else {
      try {
        metrics = parseMetrics(new TextDecoder("utf-8", { fatal: true }).decode(content.get("metrics.jsonl")!));
      } catch (e) {
        problems.push(`metrics.jsonl does not parse (${(e as Error).message})`);
      }
    }
    if (problems.length) return { record: null, problems };
  }
  return { record: { manifest: manifest!, status: status!, summary, metrics }, problems, metricsVerified };
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
export function entryNames(cacheRoot: string): Promise<string[]> {
  const names: string[] = [];
  try {
    // One blocking call: about a third of the time of the async iterator at 100k entries.
    for (const e of Deno.readDirSync(cacheRoot)) {
      if (e.isDirectory && /^[0-9a-f]{64}$/.test(e.name)) names.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return Promise.resolve([]);
    return Promise.reject(e);
  }
  return Promise.resolve(names.sort());
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

/** A status record with nothing filled in. */
export function emptyStatus(status: RunStatusRecord["status"]): RunStatusRecord {
  return { status, pid: null, hostname: null, heartbeat_at: null, started_at: null, finished_at: null, step: null };
}
