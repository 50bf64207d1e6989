/**
 * The run page's data (cache entry, lineage from the database) and the live updates the pages poll.
 *
 * @module
 */
import { stringify as toYaml } from "yaml";
import { type EntryPaths, entryPaths, inspectEntry, liveStatus, readAttempts } from "../runner/cache.ts";
import { listCheckpoints } from "../train/checkpoint.ts";
import type { MetricRow, RunManifest, RunStatusRecord, RunSummary } from "../core/records.ts";
import {
  type Curve,
  curveOf,
  HASH_RE,
  readJson,
  readMetrics,
  RUN_COLS,
  type RunRow,
  type Source,
  toRunRow,
  withDb,
} from "./data.ts";

/** Everything on a run page. */
export interface RunPage {
  hash: string;
  manifest: RunManifest;
  status: string;
  statusRecord: RunStatusRecord;
  summary: RunSummary | null;
  problems: string[];
  configYaml: string;
  hashInputsYaml: string;
  attempts: Awaited<ReturnType<typeof readAttempts>>;
  checkpoints: { name: string; step: number | null; created_at: string | null }[];
  parent: RunRow | { hash: string; run_id: null } | null;
  ancestors: { hash: string; run_id: string | null; experiment: string | null; depth: number }[];
  children: RunRow[];
  curve: Curve;
  extra: [string, number][];
}

/** The run page's data, from the cache entry (and lineage from the database); null for an unknown hash. */
export async function runPage(src: Source, hash: string): Promise<RunPage | null> {
  if (!HASH_RE.test(hash)) return null;
  const p: EntryPaths = entryPaths(src.paths.cache, hash);
  const { record, problems } = await inspectEntry(p);
  const manifest = record?.manifest ?? await readJson<RunManifest>(p.manifest);
  if (!manifest) return null;
  const statusRecord = record?.status ?? (await readJson<RunStatusRecord>(p.status)) ??
    {
      status: "queued",
      pid: null,
      hostname: null,
      heartbeat_at: null,
      started_at: null,
      finished_at: null,
      step: null,
    };
  const metrics = record?.metrics.length ? record.metrics : await readMetrics(p);
  const checkpoints = [];
  for (const name of await listCheckpoints(p.dir)) {
    const st = await readJson<{ step?: number; created_at?: string }>(`${p.dir}/checkpoints/${name}/state.json`);
    checkpoints.push({ name, step: st?.step ?? null, created_at: st?.created_at ?? null });
  }
  const parentHash = Object.values(manifest.hash_inputs?.parent ?? {})[0] ?? null;
  const lineage = await withDb(src, async (q) => ({
    parent: parentHash
      ? (await q(`SELECT ${RUN_COLS} FROM runs WHERE hash = $h`, { h: parentHash })).rows.map(toRunRow)[0]
      : undefined,
    ancestors: (await q(
      `SELECT a.ancestor AS hash, r.run_id, r.experiment, a.depth FROM run_ancestry a LEFT JOIN runs r ON r.hash = a.ancestor
       WHERE a.hash = $h ORDER BY a.depth`,
      { h: hash },
    )).rows as unknown as RunPage["ancestors"],
    children: (await q(`SELECT ${RUN_COLS} FROM runs WHERE parent_hash = $h ORDER BY experiment, run_id`, { h: hash }))
      .rows.map(toRunRow),
  }));
  return {
    hash,
    manifest,
    status: liveStatus(statusRecord, p),
    statusRecord,
    summary: record?.summary ?? null,
    problems,
    configYaml: toYaml(manifest.config),
    hashInputsYaml: toYaml(manifest.hash_inputs ?? {}, { indent: 2 }),
    attempts: await readAttempts(p),
    checkpoints,
    parent: parentHash ? lineage?.parent ?? { hash: parentHash, run_id: null } : null,
    ancestors: lineage?.ancestors ?? [],
    children: lineage?.children ?? [],
    curve: curveOf(hash, metrics),
    extra: Object.entries(record?.summary?.extra ?? {}).sort(([a], [b]) => a.localeCompare(b)),
  };
}

/** New metric rows of runs since `after` rows (per hash), with their live status: what the pages poll. */
export async function liveUpdate(
  src: Source,
  after: Record<string, number>,
): Promise<Record<string, { status: string; total: number; rows: MetricRow[] }>> {
  const out: Record<string, { status: string; total: number; rows: MetricRow[] }> = {};
  for (const [hash, n] of Object.entries(after)) {
    if (!HASH_RE.test(hash)) continue;
    const p = entryPaths(src.paths.cache, hash);
    const rows = await readMetrics(p);
    const s = await readJson<RunStatusRecord>(p.status);
    out[hash] = { status: s ? liveStatus(s, p) : "queued", total: rows.length, rows: rows.slice(Math.max(0, n)) };
  }
  return out;
}
