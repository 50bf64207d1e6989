/**
 * The run cache: `results/cache/<hash>/`, one directory per run hash, the source of
 * truth for every result (the DuckDB store is rebuilt from it). File formats are in
 * records.ts. Every file is written atomically; `status.json` is written last, so a
 * run is `completed` only once its summary and metrics are on disk.
 *
 * @module
 */
import { stringify as toYaml } from "yaml";
import { resolve } from "node:path";
import { atomicWrite, atomicWriteJson, readJsonOrNull } from "../util/fs.ts";
import type { MetricRow, RunManifest, RunRecord, RunStatusRecord, RunSummary } from "./records.ts";

/** Paths of one cache entry. */
export interface EntryPaths {
  dir: string;
  manifest: string;
  config: string;
  status: string;
  summary: string;
  metrics: string;
  lock: string;
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
  };
}

/** Writes manifest.json and config.yaml (the resolved config, for humans). */
export async function writeManifest(p: EntryPaths, m: RunManifest): Promise<void> {
  await atomicWriteJson(p.manifest, m);
  const header = `# finelab run ${m.hash}\n# ${m.experiment} ${m.run_id}; resolved config (all defaults applied)\n`;
  await atomicWrite(p.config, header + toYaml(m.config));
}

/** Writes status.json. */
export function writeStatus(p: EntryPaths, s: RunStatusRecord): Promise<void> {
  return atomicWriteJson(p.status, s);
}

/** Writes the final results: metrics.jsonl, then summary.json. Call writeStatus after. */
export async function writeResults(p: EntryPaths, summary: RunSummary, metrics: MetricRow[]): Promise<void> {
  await atomicWrite(p.metrics, metrics.map((r) => JSON.stringify(r)).join("\n") + (metrics.length ? "\n" : ""));
  await atomicWriteJson(p.summary, summary);
}

/** Reads metrics.jsonl (empty when absent). */
export async function readMetrics(p: EntryPaths): Promise<MetricRow[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(p.metrics);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return text.split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l) as MetricRow);
}

/** Reads a whole entry; null when it has no manifest (never started or not a run dir). */
export async function readRecord(p: EntryPaths): Promise<RunRecord | null> {
  const manifest = await readJsonOrNull<RunManifest>(p.manifest);
  if (!manifest) return null;
  const status = (await readJsonOrNull<RunStatusRecord>(p.status)) ?? emptyStatus("queued");
  const summary = await readJsonOrNull<RunSummary>(p.summary);
  const metrics = summary ? await readMetrics(p) : [];
  return { manifest, status, summary, metrics };
}

/** True when the entry holds a finished run (completed or failed with a summary). */
export async function isFinished(p: EntryPaths): Promise<boolean> {
  const s = await readJsonOrNull<RunStatusRecord>(p.status);
  return !!s && (s.status === "completed" || s.status === "failed") &&
    (await readJsonOrNull<RunSummary>(p.summary)) !== null;
}

/** Every entry in the cache (sorted by hash), skipping dirs that are not runs. */
export async function listRecords(cacheRoot: string): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  let names: string[] = [];
  try {
    for await (const e of Deno.readDir(cacheRoot)) {
      if (e.isDirectory && /^[0-9a-f]{64}$/.test(e.name)) names.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  names = names.sort();
  for (const n of names) {
    const r = await readRecord(entryPaths(cacheRoot, n));
    if (r) out.push(r);
  }
  return out;
}

/** A status record with nothing filled in. */
export function emptyStatus(status: RunStatusRecord["status"]): RunStatusRecord {
  return { status, pid: null, hostname: null, heartbeat_at: null, started_at: null, finished_at: null, step: null };
}
