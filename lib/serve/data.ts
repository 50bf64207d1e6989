/**
 * What the dashboard shows, read from the results database (read-only, opened per request and closed
 * again so that runners can write it) and from the run cache (live status of unfinished runs, loss curves,
 * manifests, attempts, checkpoints). Nothing here writes but the cache's recorded listing (`results/.cache-listing`,
 * as `runs` keeps it; skipped in a read-only folder). At 100k runs a page costs what its experiments, the
 * unfinished entries and the runs it shows cost: aggregates are SQL, only their rows cross into JS.
 *
 * @module
 */
import { openStore, type QueryParam, type QueryResult } from "../store/mod.ts";
import { entryPaths, mapPool } from "../runner/cache.ts";
import { listExperiments, loadExperiment } from "../runner/plan.ts";
import type { MetricRow } from "../core/records.ts";
import { liveRuns, readMetrics } from "./live.ts";

export { liveRuns, readJson, readMetrics } from "./live.ts";
import type { ProjectPaths } from "../util/paths.ts";

/** A run hash: 64 lower-case hex digits (anything else is refused before it reaches a path). */
export const HASH_RE = /^[0-9a-f]{64}$/;
/** An experiment id as lib/runner/plan.ts accepts it. */
export const EXPERIMENT_RE = /^[a-z0-9][a-z0-9_-]*$/;

/** Where the dashboard reads from. */
export interface Source {
  paths: ProjectPaths;
  /** How long to wait for the database while a runner writes it (default 5 s). */
  lockTimeoutMs?: number;
}

/** Runs `fn` on a read-only handle of the results database; null when there is no database yet. */
export async function withDb<T>(src: Source, fn: (q: Query) => Promise<T>): Promise<T | null> {
  try {
    await Deno.stat(src.paths.db);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const store = await openStore(src.paths.db, { readOnly: true, lockTimeoutMs: src.lockTimeoutMs ?? 5000 });
  try {
    return await fn((sql, params) => store.query(sql, params));
  } finally {
    await store.close();
  }
}

/** A query on the open database. */
export type Query = (sql: string, params?: Record<string, QueryParam>) => Promise<QueryResult>;

/** A run as the index, experiment and compare pages list it. */
export interface RunRow {
  hash: string;
  run_id: string;
  experiment: string;
  variant: string;
  seed: number;
  status: string;
  steps_done: number | null;
  steps: number | null;
  val_loss: number | null;
  val_ppl: number | null;
  final_train_loss: number | null;
  params: number | null;
  tokens_per_sec: number | null;
  parent_hash: string | null;
  finished_at: string | null;
}

/** A run training right now (from the cache: status.json + the lock). */
export interface LiveRun {
  hash: string;
  run_id: string;
  experiment: string;
  variant: string;
  seed: number;
  step: number | null;
  steps: number;
  started_at: string | null;
}

/** One line of the index. */
export interface ExperimentInfo {
  id: string;
  description: string;
  n_runs: number;
  counts: Record<string, number>;
  last_change: string | null;
  verdict: string | null;
}

/** Options of {@link experimentList} and {@link experimentPage}. */
export interface LiveOption {
  /** The runs training now ({@link liveRuns}), when the caller has them already. */
  live?: LiveRun[];
}

/**
 * The experiments of the database with run counts by status (live ones counted as running) and verdict lines.
 * Counted in SQL: what crosses into JS is a few rows per experiment, whatever the number of runs.
 */
export async function experimentList(src: Source, opts: LiveOption = {}): Promise<ExperimentInfo[]> {
  const live = opts.live ?? await liveRuns(src);
  const liveHashes = live.map((l) => l.hash).filter((h) => HASH_RE.test(h)).map((h) => `'${h}'`).join(", ");
  const got = await withDb(src, async (q) => ({
    // Each experiment's runs counted by status (a run planned twice counted once) and its last change.
    rows: (await q(
      `WITH c AS (
         SELECT r.experiment, r.status, max(r.finished_at) AS f, max(r.started_at) AS s, count(*)::INTEGER AS n
         FROM (SELECT DISTINCT experiment, hash FROM experiment_runs) x
         JOIN runs r ON r.hash = x.hash AND r.experiment = x.experiment GROUP BY ALL)
       SELECT e.id, e.description, e.n_runs, greatest(max(e.updated_at), max(c.f), max(c.s)) AS last_change,
         list(c.status ORDER BY c.status) FILTER (WHERE c.status IS NOT NULL) AS statuses,
         list(c.n ORDER BY c.status) FILTER (WHERE c.status IS NOT NULL) AS counts
       FROM experiments e LEFT JOIN c ON c.experiment = e.id GROUP BY ALL ORDER BY e.id`,
    )).rows,
    // The stored status of each live run: it is counted as running instead.
    stored: liveHashes
      ? (await q(`SELECT DISTINCT experiment, hash, status FROM current_runs WHERE hash IN (${liveHashes})`)).rows
      : [],
    // Experiments without a module (or a report hook) get the fallback verdict: all of them in one query.
    fallback: (await q(
      `${BEST_VARIANT_SQL} QUALIFY row_number() OVER (PARTITION BY experiment ORDER BY val_ppl_mean) = 1`,
    )).rows,
  }));
  const modules = new Set(await listExperiments(src.paths));
  const fallback = new Map((got?.fallback ?? []).map((r) => [r.experiment, r]));
  const counts = new Map<string, Record<string, number>>();
  const countsOf = (id: string) => counts.get(id) ?? counts.set(id, {}).get(id)!;
  for (const r of got?.rows ?? []) {
    const c = countsOf(String(r.id)), ns = (r.counts ?? []) as number[];
    ((r.statuses ?? []) as string[]).forEach((s, i) => c[s] = Number(ns[i]));
  }
  const stored = new Map((got?.stored ?? []).map((r) => [`${r.experiment}#${r.hash}`, String(r.status)]));
  for (const l of live) {
    const c = countsOf(l.experiment), was = stored.get(`${l.experiment}#${l.hash}`);
    if (was !== undefined && --c[was] === 0) delete c[was];
    c.running = (c.running ?? 0) + 1;
  }
  const out: ExperimentInfo[] = [];
  for (const r of got?.rows ?? []) {
    const id = String(r.id);
    out.push({
      id,
      description: String(r.description ?? ""),
      n_runs: Number(r.n_runs ?? 0),
      counts: counts.get(id)!,
      last_change: (r.last_change as string | null) ?? null,
      verdict: modules.has(id) ? (await experimentReport(src, id)).verdict : fallbackVerdict(fallback.get(id)),
    });
  }
  // Experiments whose first runs are training and not yet in the database.
  for (const l of live) {
    if (out.some((x) => x.id === l.experiment)) continue;
    const n = live.filter((x) => x.experiment === l.experiment).length;
    out.push({
      id: l.experiment,
      description: "",
      n_runs: n,
      counts: { running: n },
      last_change: l.started_at,
      verdict: null,
    });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

/** The experiment's report (its `report` hook's printed text) and verdict line. */
export interface ExperimentReport {
  text: string | null;
  verdict: string | null;
}

const reports = new Map<string, { key: string; value: ExperimentReport }>();

/** Completed variants with their val ppl (the fallback verdict picks the lowest per experiment). */
const BEST_VARIANT_SQL = `SELECT experiment, variant, n_completed, val_ppl_mean, val_ppl_std FROM variant_stats
  WHERE n_completed > 0`;

/** The verdict of an experiment without a report hook: its best variant by val ppl (null without one). */
function fallbackVerdict(best: Record<string, unknown> | undefined): string | null {
  if (!best) return null;
  const std = best.val_ppl_std === null ? "" : ` ± ${Number(best.val_ppl_std).toFixed(3)}`;
  return `lowest val ppl: ${best.variant} ${Number(best.val_ppl_mean).toFixed(3)}${std} ` +
    `(${best.n_completed} run${best.n_completed === 1 ? "" : "s"})`;
}

/**
 * Runs the experiment module's `report` hook over the read-only database (no plots) and keeps what it
 * prints; the verdict is its last printed paragraph. Without a hook: the best variant by val_ppl.
 * Cached until the database file changes.
 */
export async function experimentReport(src: Source, id: string): Promise<ExperimentReport> {
  const st = await Deno.stat(src.paths.db).catch(() => null);
  const key = `${st?.mtime?.getTime()}:${st?.size}`;
  const hit = reports.get(`${src.paths.db}#${id}`);
  if (hit?.key === key) return hit.value;
  let value: ExperimentReport = { text: null, verdict: null };
  let report: ((ctx: never) => Promise<string[]>) | undefined;
  try {
    report = (await loadExperiment(id, src.paths)).exp.report as typeof report;
  } catch { /* no module for it (or a broken one): the fallback line */ }
  value = await withDb(src, async (q) => {
    if (report) {
      const printed: string[] = [];
      try {
        await (report as unknown as (ctx: unknown) => Promise<string[]>)({
          experiment: id,
          query: q,
          plotDir: null,
          print: (t: string) => printed.push(t),
        });
        const verdict = printed.filter((t) => t.trim()).at(-1)?.trim() ?? null;
        return { text: printed.join("\n").trim() || null, verdict };
      } catch (e) {
        return { text: null, verdict: `report failed: ${(e as Error).message}` };
      }
    }
    const best = (await q(`${BEST_VARIANT_SQL} AND experiment = $id ORDER BY val_ppl_mean LIMIT 1`, { id })).rows[0];
    return { text: null, verdict: fallbackVerdict(best) };
  }) ?? value;
  reports.set(`${src.paths.db}#${id}`, { key, value });
  return value;
}

/** The `runs` columns of a {@link RunRow}. */
export const RUN_COLS =
  `hash, run_id, experiment, variant, seed, status, steps_done, val_loss, val_ppl, final_train_loss,
  params, tokens_per_sec, parent_hash, finished_at, json_extract(config_json, '$.train.steps')::INTEGER AS steps`;

/** A query row as a {@link RunRow}. */
export function toRunRow(r: Record<string, unknown>): RunRow {
  return r as unknown as RunRow;
}

/** A variant's line of the experiment page (mean ± sample std over completed seeds). */
export interface VariantStat {
  variant: string;
  n_runs: number;
  n_completed: number;
  val_loss_mean: number | null;
  val_loss_std: number | null;
  val_ppl_mean: number | null;
  val_ppl_std: number | null;
}

/** Loss curve points of one run: `[step, value]` pairs. */
export interface Curve {
  hash: string;
  train: [number, number][];
  val: [number, number][];
}

/** Curves from metric rows. */
export function curveOf(hash: string, rows: readonly Pick<MetricRow, "step" | "split" | "name" | "value">[]): Curve {
  const c: Curve = { hash, train: [], val: [] };
  for (const r of rows) {
    if (r.name !== "loss" || r.value === null || !Number.isFinite(r.value)) continue;
    (r.split === "val" ? c.val : c.train).push([r.step, r.value]);
  }
  return c;
}

/**
 * Curves of runs: from each entry's metrics.jsonl (what the database was given; at a few hundred runs, reading the
 * files is several times faster than finding their rows among tens of millions), and from the database for runs
 * whose entry is gone (`q`; each run's loss points gathered there, one JSON list per run and split).
 */
export async function curves(src: Source, hashes: readonly string[], q?: Query): Promise<Curve[]> {
  const ok = (h: string) => HASH_RE.test(h); // hex only: safe in a path and to inline in SQL
  const read = await mapPool(hashes, 8, async (h) => ok(h) ? await readMetrics(entryPaths(src.paths.cache, h)) : []);
  const fromDb = new Map<string, Curve>();
  const missing = hashes.filter((h, i) => read[i].length === 0 && ok(h));
  if (q && missing.length) {
    const r = await q(
      `SELECT hash, split = 'val' AS val,
         coalesce(to_json(list([step, value] ORDER BY step) FILTER (WHERE isfinite(value)))::VARCHAR, '[]') AS points
       FROM metrics WHERE name = 'loss' AND hash IN (${missing.map((h) => `'${h}'`).join(", ")}) GROUP BY hash, split`,
    );
    for (const row of r.rows) {
      const h = String(row.hash);
      const c = fromDb.get(h) ?? fromDb.set(h, { hash: h, train: [], val: [] }).get(h)!;
      (row.val ? c.val : c.train).push(...JSON.parse(String(row.points)) as [number, number][]);
    }
  }
  return hashes.map((h, i) => (read[i].length ? curveOf(h, read[i]) : fromDb.get(h) ?? curveOf(h, [])));
}

/** Everything on an experiment page. */
export interface ExperimentPage {
  id: string;
  description: string;
  scale: string | null;
  report: ExperimentReport;
  variants: VariantStat[];
  runs: RunRow[];
  curves: Curve[];
}

/** The experiment page's data; null for an experiment the database and the cache do not know. */
export async function experimentPage(src: Source, id: string, opts: LiveOption = {}): Promise<ExperimentPage | null> {
  if (!EXPERIMENT_RE.test(id)) return null;
  const live = (opts.live ?? await liveRuns(src)).filter((l) => l.experiment === id);
  const got = await withDb(src, async (q) => {
    const e = (await q(
      `SELECT e.description, (SELECT any_value(scale) FROM experiment_runs WHERE experiment = e.id) AS scale
       FROM experiments e WHERE e.id = $id`,
      { id },
    )).rows[0];
    const variants = (await q(
      `SELECT variant, n_runs, n_completed, val_loss_mean, val_loss_std, val_ppl_mean, val_ppl_std
       FROM variant_stats WHERE experiment = $id ORDER BY val_ppl_mean NULLS LAST, variant`,
      { id },
    )).rows as unknown as VariantStat[];
    const runs = (await q(`SELECT ${RUN_COLS} FROM current_runs WHERE experiment = $id ORDER BY variant, seed`, {
      id,
    })).rows.map(toRunRow);
    return { e, variants, runs, q };
  });
  if (!got?.e && !live.length) return null;
  const runs = got?.runs ?? [];
  for (const l of live) {
    const known = runs.find((r) => r.hash === l.hash);
    if (known) known.status = "running";
    else {
      runs.push({
        ...l,
        status: "running",
        steps_done: l.step,
        val_loss: null,
        val_ppl: null,
        final_train_loss: null,
        params: null,
        tokens_per_sec: null,
        parent_hash: null,
        finished_at: null,
      });
    }
  }
  const hashes = runs.map((r) => r.hash);
  const cs = await withDb(src, (q) => curves(src, hashes.filter((h) => !live.some((l) => l.hash === h)), q)) ?? [];
  const liveCurves = await curves(src, live.map((l) => l.hash));
  return {
    id,
    description: String(got?.e?.description ?? ""),
    scale: (got?.e?.scale as string | null) ?? null,
    report: got?.e ? await experimentReport(src, id) : { text: null, verdict: null },
    variants: got?.variants ?? [],
    runs,
    curves: [...cs, ...liveCurves],
  };
}
