/**
 * The dashboard's view of runs training now, read from the run cache: status files and the lock of each entry the
 * database does not hold as finished (at 100k runs, those of the few unfinished ones), and metrics.jsonl as it is.
 *
 * @module
 */
import { type EntryPaths, entryPaths, liveStatus, mapPool } from "../runner/cache.ts";
import { listedNames, listedSource } from "../runner/runs.ts";
import type { MetricRow, RunManifest, RunStatusRecord } from "../core/records.ts";
import { HASH_RE, type LiveRun, type Source, withDb } from "./data.ts";

/**
 * metrics.jsonl as it is now: rows of a finished run, or of a running one that is appending (a line
 * being written is left for the next read).
 */
export async function readMetrics(p: EntryPaths): Promise<MetricRow[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(p.metrics);
  } catch {
    return [];
  }
  const out: MetricRow[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      break; // torn last line of an append in progress
    }
  }
  return out;
}

export async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch {
    return null;
  }
}

/**
 * Every run whose process is training it now (status `running` and its lock held / heartbeat fresh). Entries
 * the database holds as finished are not read (a finished run trains again only once its entry is found
 * corrupt, and is then ingested again): at 100k runs the status files of the unfinished ones are all it reads.
 */
export async function liveRuns(src: Source): Promise<LiveRun[]> {
  const listed = await listedSource(src.paths);
  const finished = `SELECT hash FROM runs WHERE status IN ('completed', 'failed', 'diverged')`;
  const names = (await withDb(src, async (q) => {
    // The recorded listing joined in DuckDB: only the names of unfinished entries cross into JS.
    if (listed.sql) return (await q(`SELECT name FROM ${listed.sql} WHERE name NOT IN (${finished})`)).rows;
    const done = new Set((await q(finished)).rows.map((r) => String(r.hash)));
    return listed.names!.filter((n) => !done.has(n)).map((name) => ({ name }));
  }))?.map((r) => String(r.name)) ?? listed.names ?? await listedNames(src.paths);
  const found = await mapPool(names.filter((n) => HASH_RE.test(n)), 16, async (name): Promise<LiveRun | null> => {
    const p = entryPaths(src.paths.cache, name);
    const s = await readJson<RunStatusRecord>(p.status);
    if (s?.status !== "running" || liveStatus(s, p) !== "running") return null;
    const m = await readJson<RunManifest>(p.manifest);
    if (!m) return null;
    return {
      hash: m.hash,
      run_id: m.run_id,
      experiment: m.experiment,
      variant: m.variant,
      seed: m.seed,
      step: s.step,
      steps: m.config.train.steps,
      started_at: s.started_at,
    };
  });
  return found.filter((x): x is LiveRun => x !== null).sort((a, b) => a.run_id.localeCompare(b.run_id));
}
