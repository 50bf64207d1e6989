/**
 * Garbage collection of the run cache (`deno task gc`): what can go, and how much it frees.
 *
 * - entries of runs that did not finish or failed (`interrupted`, `queued`, `failed`, `diverged`, corrupt), which
 *   the next `exp` would retrain anyway;
 * - periodic checkpoints (`checkpoints/step-*`) left in finished entries (the final checkpoint is kept);
 * - with `unplanned`: finished entries no experiment's latest plan names (`results/cache/plans/*.json`), no
 *   tag names (`exp --tag`, lib/runner/tags.ts) and no other entry starts from (`init_from` parents are kept).
 *
 * An entry whose lock is held (a run training now) is never touched. Nothing is deleted unless asked
 * ({@link applyGc}); `deno task gc` is a dry run by default.
 *
 * @module
 */
import { resolve } from "node:path";
import { entryPaths } from "./cache.ts";
import { verifyPool } from "./verify_pool.ts";
import { isLocked } from "./lock.ts";
import { readTags } from "./tags.ts";

/** One thing gc would remove. */
export interface GcItem {
  /** Absolute path of the folder to remove. */
  path: string;
  /** Run hash (first 12 hex digits) and id, when known. */
  hash: string;
  run_id: string | null;
  experiment: string | null;
  /** Why it can go. */
  reason: string;
  bytes: number;
}

/** Options of {@link planGc}. */
export interface GcOptions {
  /** Also collect finished entries no experiment plans (default false). */
  unplanned?: boolean;
}

async function sizeOf(path: string): Promise<number> {
  let total = 0;
  try {
    const st = await Deno.lstat(path);
    if (!st.isDirectory) return st.size;
    for await (const e of Deno.readDir(path)) total += await sizeOf(`${path}/${e.name}`);
  } catch { /* vanished meanwhile */ }
  return total;
}

/** Entries verified per round trip to the Workers (bounds memory whatever the cache's size). */
const GC_BATCH = 2000;

async function plannedHashes(cache: string): Promise<Set<string>> {
  const out = new Set<string>();
  try {
    for await (const e of Deno.readDir(`${cache}/plans`)) {
      if (!e.name.endsWith(".json")) continue;
      const plan = JSON.parse(await Deno.readTextFile(`${cache}/plans/${e.name}`)) as {
        plan?: { runs?: { hash: string }[] };
      };
      for (const r of plan.plan?.runs ?? []) out.add(r.hash);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out;
}

/** What gc would remove from the cache folder `cache` (nothing is changed). */
export async function planGc(cacheDir: string, opts: GcOptions = {}): Promise<GcItem[]> {
  const cache = resolve(cacheDir);
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(cache)) if (e.isDirectory && /^[0-9a-f]{64}$/.test(e.name)) names.push(e.name);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const planned = opts.unplanned ? await plannedHashes(cache) : new Set<string>();
  if (opts.unplanned) { for (const t of await readTags({ cache })) planned.add(t.hash); // a tag asks to keep it
   }
  const parents = new Set<string>();
  const finished: { name: string; item: Omit<GcItem, "path" | "reason" | "bytes"> }[] = [];
  const items: GcItem[] = [];
  // Entries are read and verified on Workers, a batch at a time (verifyPool; at 100k entries one thread took 81 s).
  const sorted = names.sort();
  const pool = verifyPool(sorted.length);
  try {
    const verify = (i: number) => i < sorted.length ? pool.verify(cache, sorted.slice(i, i + GC_BATCH)) : null;
    let next = verify(0);
    for (let i = 0; next; i += GC_BATCH) {
      const batch = sorted.slice(i, i + GC_BATCH);
      const states = await next;
      next = verify(i + GC_BATCH); // the Workers read the next batch while this thread looks at this one
      next?.catch(() => {}); // awaited (and its error thrown) on the next turn
      for (const [j, name] of batch.entries()) {
        const p = entryPaths(cache, name);
        if (isLocked(p.lock)) continue; // training now: never touched
        const { record, problems } = states[j];
        const who = {
          hash: name.slice(0, 12),
          run_id: record?.manifest.run_id ?? null,
          experiment: record?.manifest.experiment ?? null,
        };
        for (const h of Object.values(record?.manifest.hash_inputs?.parent ?? {})) parents.add(h);
        const status = record ? record.status.status : "corrupt"; // verifyForStore gives the live status
        if (problems.length || !record || status !== "completed") {
          const why = problems.length ? `corrupt (${problems[0]})` : status;
          items.push({ path: p.dir, ...who, reason: `${why}: the next exp retrains it`, bytes: await sizeOf(p.dir) });
          continue;
        }
        try {
          for await (const e of Deno.readDir(`${p.dir}/checkpoints`)) {
            if (e.isDirectory && /^step-\d+$/.test(e.name)) {
              const path = `${p.dir}/checkpoints/${e.name}`;
              items.push({ path, ...who, reason: "periodic checkpoint of a finished run", bytes: await sizeOf(path) });
            }
          }
        } catch { /* no checkpoints folder */ }
        finished.push({ name, item: who });
      }
    }
  } finally {
    pool.close();
  }
  if (opts.unplanned) {
    for (const { name, item } of finished) {
      if (planned.has(name) || parents.has(name)) continue;
      const dir = entryPaths(cache, name).dir;
      items.push({ path: dir, ...item, reason: "no experiment's latest plan names it", bytes: await sizeOf(dir) });
    }
  }
  return items;
}

/** Removes the items (skipping any entry that got locked meanwhile); returns the bytes freed. */
export async function applyGc(cacheDir: string, items: GcItem[]): Promise<number> {
  const cache = resolve(cacheDir);
  let freed = 0;
  for (const it of items) {
    const hash = it.path.slice(cache.length + 1).split("/")[0];
    if (isLocked(entryPaths(cache, hash).lock)) continue;
    await Deno.remove(it.path, { recursive: true }).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
    freed += it.bytes;
  }
  return freed;
}
