/**
 * Concurrency at scale (bench/store.ts --concurrency N): `runners` processes run `exp` of one N-run sweep at
 * `--scale tiny` against one shared results folder, and a `db rebuild` runs while they ingest. Checks:
 * every run trained exactly once (one `start` in each entry's attempts.jsonl), the database complete (N
 * completed runs), no runner failed and none reported a lock error.
 *
 * @module
 */
import { REPO_ROOT } from "../lib/util/paths.ts";
import { entryNames, entryPaths, readAttempts } from "../lib/runner/cache.ts";
import { openStore } from "../lib/store/mod.ts";
import { sweepModule, sweepShape } from "./store_sweep.ts";

/** What {@link runConcurrency} measured and checked. */
export interface ConcurrencyReport {
  runs: number;
  runners: number;
  wall_s: number;
  runner_exit_codes: number[];
  lock_errors: number;
  entries: number;
  trained_once: number;
  trained_more: number;
  db_runs: number;
  db_completed: number;
  rebuild_while_ingesting: { rc: number; wall_s: number; started_at_s: number; runs_done_then: number; out: string };
  ok: boolean;
}

/** Finished runs in the cache (entries with a summary.json). */
async function finishedRuns(cache: string): Promise<number> {
  let n = 0;
  for (const name of await entryNames(cache)) {
    if (await Deno.stat(`${entryPaths(cache, name).dir}/summary.json`).then(() => true, () => false)) n++;
  }
  return n;
}

/**
 * Runs the check in `dir` (removed first). The rebuild starts once `rebuildAt` of the runs are finished
 * (0.5: halfway; default) or when every runner has exited, whichever comes first.
 */
export async function runConcurrency(
  o: { runs: number; runners: number; dir: string; rebuildAt?: number },
): Promise<ConcurrencyReport> {
  await Deno.remove(o.dir, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${o.dir}/experiments`, { recursive: true });
  await Deno.writeTextFile(`${o.dir}/experiments/conc.ts`, sweepModule(o.runs, { id: "conc" }));
  const env = {
    FINELAB_RESULTS: `${o.dir}/results`,
    FINELAB_EXPERIMENTS: `${o.dir}/experiments`,
    NO_COLOR: "1",
    OMP_NUM_THREADS: "1",
  };
  const spawn = (args: string[]) =>
    new Deno.Command("nice", {
      args: ["-n", "10", "deno", "task", "-q", ...args],
      cwd: REPO_ROOT,
      env,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  // The dataset is prepared once, before the runners start (not part of the check).
  await spawn(["exp", "conc", "--scale", "tiny", "--dry-run"]).output();
  const t0 = performance.now();
  const runners = Array.from(
    { length: o.runners },
    () => spawn(["exp", "conc", "--scale", "tiny", "--no-plot"]).output(),
  );
  let exited = 0;
  runners.forEach((p) => p.finally(() => exited++));
  const target = Math.ceil((o.rebuildAt ?? 0.5) * sweepShape(o.runs).runs);
  let done = 0;
  while (exited < runners.length && (done = await finishedRuns(`${o.dir}/results/cache`)) < target) {
    await new Promise((r) => setTimeout(r, 2000));
  }
  const r0 = performance.now();
  const rb = await spawn(["db", "rebuild"]).output();
  const rebuild = {
    rc: rb.code,
    wall_s: +((performance.now() - r0) / 1000).toFixed(2),
    started_at_s: +((r0 - t0) / 1000).toFixed(1),
    runs_done_then: done,
    out: new TextDecoder().decode(rb.code === 0 ? rb.stdout : rb.stderr).trim().slice(-300),
  };
  const outs = await Promise.all(runners);
  const wall = (performance.now() - t0) / 1000;
  const texts = outs.map((x) => new TextDecoder().decode(x.stderr) + new TextDecoder().decode(x.stdout));
  const lockErrors = texts.filter((t) => /StoreLockedError|Could not set lock|lock.*timed out/i.test(t)).length;
  outs.forEach((x, i) => x.code !== 0 && console.error(`runner ${i} exited ${x.code}: ${texts[i].slice(-800)}`));
  const cache = `${o.dir}/results/cache`;
  const names = await entryNames(cache);
  let once = 0, more = 0;
  for (const n of names) {
    const starts = (await readAttempts(entryPaths(cache, n))).filter((a) => a.event === "start").length;
    if (starts === 1) once++;
    else more++;
  }
  const store = await openStore(`${o.dir}/results/results.duckdb`, { readOnly: true });
  let dbRuns = 0, dbCompleted = 0;
  try {
    const r = (await store.query(
      "SELECT count(*)::INTEGER AS n, count(*) FILTER (WHERE status = 'completed')::INTEGER AS c FROM runs",
    )).rows[0];
    dbRuns = Number(r.n);
    dbCompleted = Number(r.c);
  } finally {
    await store.close();
  }
  const codes = outs.map((x) => x.code);
  const planned = sweepShape(o.runs).runs;
  return {
    runs: planned,
    runners: o.runners,
    wall_s: +wall.toFixed(1),
    runner_exit_codes: codes,
    lock_errors: lockErrors,
    entries: names.length,
    trained_once: once,
    trained_more: more,
    db_runs: dbRuns,
    db_completed: dbCompleted,
    rebuild_while_ingesting: rebuild,
    ok: codes.every((c) => c === 0) && lockErrors === 0 && once === planned && more === 0 && dbCompleted === planned &&
      rebuild.rc === 0,
  };
}
