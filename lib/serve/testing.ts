/**
 * Test fixture for the dashboard: a results folder with a database and cache entries shaped as the
 * runner leaves them: experiment `synth` with variants `dense` and `wide` (2 seeds each, `wide` differs
 * in model.d_ff and train.lr), a child run started from dense/s0, a run training now (its lock held by
 * this process, metrics.jsonl growing), and hostile text in a description and a variant name.
 *
 * @module
 */
import { openStore } from "../store/mod.ts";
import { syntheticRunRecord } from "../store/testing.ts";
import {
  type EntryPaths,
  entryPaths,
  fileChecksums,
  STARTED_FILES,
  writeManifest,
  writeResults,
  writeStatus,
} from "../runner/cache.ts";
import { type Lock, tryLock } from "../runner/lock.ts";
import type { MetricRow, RunRecord } from "../core/records.ts";
import { hostname } from "node:os";
import { type ProjectPaths, projectPaths } from "../util/paths.ts";

/** Hostile text placed in the fixture (must show as text, never as markup). */
export const HOSTILE = `<img src=x onerror="window.__pwned=1">`;

/** The fixture's folders, runs and the running run's lock. */
export interface DashFixture {
  paths: ProjectPaths;
  records: RunRecord[];
  /** The running run: its entry paths (append to `metrics`) and lock (release to end it). */
  live: { hash: string; paths: EntryPaths; lock: Lock; rows: MetricRow[] };
  child: RunRecord;
  cleanup(): Promise<void>;
}

async function writeEntry(paths: ProjectPaths, rec: RunRecord): Promise<EntryPaths> {
  const p = entryPaths(paths.cache, rec.manifest.hash);
  await Deno.mkdir(p.dir, { recursive: true });
  await writeManifest(p, rec.manifest);
  const started = await fileChecksums(p, STARTED_FILES);
  const sums = rec.summary ? await writeResults(p, rec.summary, rec.metrics) : {};
  await writeStatus(p, { ...rec.status, files: { ...started, ...sums } });
  return p;
}

/** Builds the fixture in a temp folder. */
export async function dashFixture(): Promise<DashFixture> {
  const root = await Deno.makeTempDir({ prefix: "finelab_dash_" });
  const paths = projectPaths(root, `${root}/results`);
  const records: RunRecord[] = [];
  for (const seed of [0, 1]) {
    records.push(syntheticRunRecord({ experiment: "synth", variant: "dense", seed, steps: 40, evalEvery: 10 }));
    records.push(syntheticRunRecord({
      experiment: "synth",
      variant: "wide",
      seed,
      steps: 40,
      evalEvery: 10,
      floor: 1.8,
      edit: (c) => {
        c.model.d_ff = 1024;
        c.train.lr = 3e-3;
      },
    }));
  }
  const parent = records[0];
  const child = syntheticRunRecord({ experiment: "synth", variant: "child", seed: 0, steps: 40, evalEvery: 10 });
  child.manifest.hash_inputs.parent = { [`synth/${parent.manifest.run_id}`]: parent.manifest.hash };
  records.push(child);
  const other = syntheticRunRecord({ experiment: "other", variant: HOSTILE, seed: 0, steps: 20, evalEvery: 10 });
  records.push(other);
  for (const r of records) await writeEntry(paths, r);
  const store = await openStore(paths.db);
  try {
    const plan = (id: string) => ({
      scale: "default",
      runs: records.filter((r) => r.manifest.experiment === id).map((r) => ({
        hash: r.manifest.hash,
        run_id: r.manifest.run_id,
      })),
    });
    await store.ingest(records, [
      {
        id: "synth",
        description: "Synthetic runs for the dashboard tests.",
        module: "",
        n_runs: 5,
        plan: plan("synth"),
      },
      { id: "other", description: `Hostile text: ${HOSTILE}`, module: "", n_runs: 1, plan: plan("other") },
    ]);
  } finally {
    await store.close();
  }

  // A run training now: manifest, a running status whose lock this process holds, a few metric rows.
  const running = syntheticRunRecord({ experiment: "synth", variant: "live", seed: 0, steps: 40, status: "running" });
  running.status.hostname = hostname(); // the lock on this host decides that it is running
  const done = syntheticRunRecord({ experiment: "synth", variant: "live", seed: 0, steps: 40, evalEvery: 10 });
  const rows = done.metrics.filter((m) => m.step <= 12);
  const lp = await writeEntry(paths, running);
  await Deno.writeTextFile(lp.metrics, rows.map((r) => JSON.stringify(r) + "\n").join(""));
  const lock = tryLock(lp.lock);
  if (!("release" in lock)) throw new Error("fixture: cannot lock the running run");
  return {
    paths,
    records,
    child,
    live: { hash: running.manifest.hash, paths: lp, lock, rows },
    cleanup: async () => {
      lock.release();
      await Deno.remove(root, { recursive: true });
    },
  };
}
