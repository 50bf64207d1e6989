/**
 * The rows of `runs`: every cache entry with its live status (corrupt ones included), its attempts, tags
 * and a note on what to do. results.ts re-exports these.
 *
 * @module
 */
import { entryNames, entryPaths, inspectEntry, liveStatus, mapPool, readAttempts } from "./cache.ts";
import type { ProjectPaths } from "../util/paths.ts";
import { readJsonOrNull } from "../util/fs.ts";
import { tagsByHash } from "./tags.ts";

/** "42s", "3m05s", "2h07m" (for heartbeat ages). */
export function formatAge(seconds: number): string {
  if (!Number.isFinite(seconds)) return "?";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** One line of `runs`. */
export interface RunsRow {
  experiment: string | null;
  run_id: string | null;
  hash: string;
  /** queued, running, completed, failed, interrupted (a dead process's run) or corrupt. */
  status: string;
  step: number | null;
  steps: number | null;
  val_ppl: number | null;
  /** Age of the last heartbeat of a running or interrupted run. */
  heartbeat: string | null;
  /** Training attempts started (attempts.jsonl). */
  attempts: number;
  /** The run's tags (`exp --tag`), comma-separated; null when it has none. */
  tags: string | null;
  /** Why it failed, was interrupted or is corrupt, and what to do. */
  note: string | null;
}

/** The rows of `runs`: every cache entry with its live status, corrupt ones included. */
export async function runsRows(paths: ProjectPaths, experiment?: string): Promise<RunsRow[]> {
  const names = await entryNames(paths.cache);
  // Every entry is verified (checksums), a few at a time; metrics.jsonl is hashed but not parsed.
  const tags = await tagsByHash(paths);
  const rows = await mapPool(names, 16, (name) => runsRow(paths, name, experiment, tags.get(name)?.join(",") ?? null));
  return rows.filter((r): r is RunsRow => r !== null);
}

async function runsRow(
  paths: ProjectPaths,
  name: string,
  experiment: string | undefined,
  tags: string | null,
): Promise<RunsRow | null> {
  const p = entryPaths(paths.cache, name);
  if (experiment) {
    // Another experiment's entry (or one whose manifest does not parse, which has no experiment): not listed.
    const m = await readJsonOrNull<{ experiment?: string }>(p.manifest).catch(() => null);
    if (m?.experiment !== experiment) return null;
  }
  const { record: r, problems } = await inspectEntry(p, { rawMetrics: true });
  if (problems.length) {
    const m = await readJsonOrNull<{ experiment?: string; run_id?: string }>(p.manifest).catch(() => null);
    if (experiment && m?.experiment !== experiment) return null;
    return {
      experiment: m?.experiment ?? null,
      run_id: m?.run_id ?? null,
      hash: name.slice(0, 12),
      status: "corrupt",
      step: null,
      steps: null,
      val_ppl: null,
      heartbeat: null,
      attempts: (await readAttempts(p)).filter((a) => a.event === "start").length,
      tags,
      note: `${problems.join("; ")}; the next exp run retrains it`,
    };
  }
  if (!r || (experiment && r.manifest.experiment !== experiment)) return null;
  const attempts = (await readAttempts(p)).filter((a) => a.event === "start").length;
  const status = liveStatus(r.status, p);
  const beat = r.status.heartbeat_at ? (Date.now() - Date.parse(r.status.heartbeat_at)) / 1000 : NaN;
  let note: string | null = null;
  if (status === "failed" || status === "diverged") note = r.summary?.failure?.reason ?? null;
  else if (status === "interrupted") {
    note = `${r.status.error ? `error: ${r.status.error}; ` : ""}process ${r.status.pid ?? "?"} on ` +
      `${r.status.hostname ?? "?"} is gone; \`deno task exp ${r.manifest.experiment}\` resumes it`;
  } else if (status === "running") note = `pid ${r.status.pid} on ${r.status.hostname}`;
  return {
    experiment: r.manifest.experiment,
    run_id: r.manifest.run_id,
    hash: name.slice(0, 12),
    status,
    step: r.summary?.steps_done ?? r.status.step,
    steps: r.manifest.config.train.steps,
    val_ppl: r.summary?.val_ppl ?? null,
    heartbeat: status === "running" || status === "interrupted" ? `${formatAge(beat)} ago` : null,
    attempts,
    tags,
    note,
  };
}
