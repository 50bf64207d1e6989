/**
 * `--verify`: retrain every run of a plan from scratch in a scratch folder and compare every logged number
 * bit for bit with the cache ({@link compareRuns}).
 *
 * @module
 */
import { resolve } from "node:path";
import { entryPaths, readRecord } from "./cache.ts";
import { tryLock } from "./lock.ts";
import type { HashedRun, Plan } from "./plan.ts";
import type { MetricRow, RunSummary } from "../core/records.ts";
import { type ExecuteOptions, trainLocked } from "./execute.ts";

/** Result of re-training a run from scratch and comparing it with the cache. */
export interface VerifyResult {
  run: HashedRun;
  identical: boolean;
  compared: number;
  differences: string[];
}

const DETERMINISTIC: (keyof RunSummary)[] = [
  "status",
  "steps_done",
  "tokens_seen",
  "final_train_loss",
  "val_loss",
  "val_ppl",
  "params",
  "flops_per_token",
];

/** Compares two runs' deterministic outputs bit for bit (Object.is on every number). */
export function compareRuns(
  a: { summary: RunSummary; metrics: MetricRow[] },
  b: { summary: RunSummary; metrics: MetricRow[] },
): { compared: number; differences: string[] } {
  const differences: string[] = [];
  let compared = 0;
  for (const k of DETERMINISTIC) {
    compared++;
    if (!Object.is(a.summary[k], b.summary[k])) differences.push(`summary.${k}: ${a.summary[k]} vs ${b.summary[k]}`);
  }
  for (const k of new Set([...Object.keys(a.summary.extra), ...Object.keys(b.summary.extra)])) {
    compared++;
    if (!Object.is(a.summary.extra[k], b.summary.extra[k])) {
      differences.push(`summary.extra.${k}: ${a.summary.extra[k]} vs ${b.summary.extra[k]}`);
    }
  }
  const key = (r: MetricRow) => `${r.split}/${r.name}@${r.step}`;
  const bm = new Map(b.metrics.map((r) => [key(r), r.value]));
  if (a.metrics.length !== b.metrics.length) {
    differences.push(`metric rows: ${a.metrics.length} vs ${b.metrics.length}`);
  }
  for (const r of a.metrics) {
    compared++;
    const v = bm.get(key(r));
    if (!Object.is(r.value, v)) differences.push(`${key(r)}: ${r.value} vs ${v}`);
  }
  return { compared, differences };
}

/**
 * `--verify`: retrains every run from scratch in a scratch directory and checks its
 * metrics are bit-identical to the cached ones. The cache is not modified.
 */
export async function verifyPlan(plan: Plan, opts: ExecuteOptions): Promise<VerifyResult[]> {
  const out: VerifyResult[] = [];
  const scratchRoot = resolve(opts.paths.results, "verify");
  for (const [i, run] of plan.runs.entries()) {
    const cached = await readRecord(run.paths);
    if (!cached?.summary) throw new Error(`${run.run_id}: not in the cache; run without --verify first`);
    const scratch = entryPaths(scratchRoot, run.hash);
    await Deno.remove(scratch.dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(scratch.dir, { recursive: true });
    const lock = tryLock(scratch.lock);
    if (!("release" in lock)) throw new Error(`${run.run_id}: another process is verifying it`);
    try {
      const vrun: HashedRun = { ...run, paths: scratch };
      await trainLocked(vrun, lock, { ...opts, force: true }, i, plan.runs.length);
      const fresh = await readRecord(scratch);
      const { compared, differences } = compareRuns(
        { summary: cached.summary, metrics: cached.metrics },
        { summary: fresh!.summary!, metrics: fresh!.metrics },
      );
      out.push({ run, identical: differences.length === 0, compared, differences });
    } finally {
      lock.release();
      await Deno.remove(scratch.dir, { recursive: true }).catch(() => {});
    }
  }
  return out;
}
