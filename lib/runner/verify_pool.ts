/**
 * Verifying cache entries for the database rebuild on several threads: each Worker reads and checks a share of a
 * batch ({@link verifyForStore}: every file's sha256, the status self-hash) while the main thread appends the
 * previous batch's rows and DuckDB reads its metric files. At 100k runs verification is a third of the rebuild's
 * CPU time; on the main thread it was the rebuild's critical path.
 *
 * @module
 */
import { countAttemptsSync, entryPaths, inspectEntry, withLiveStatus } from "./cache.ts";
import type { HashInputs, RunRecord } from "../core/records.ts";

/** One verified entry, as the rebuild stores it. */
export interface VerifiedEntry {
  /** Why the entry cannot be trusted (empty when it can). */
  problems: string[];
  /**
   * The record with its live status and attempt count; its manifest keeps of `hash_inputs` only `parent` (the
   * store's `parent_hash`), not the code map, which is most of a manifest's bytes. Null: not a run, or corrupt.
   */
  record: RunRecord | null;
  /** metrics.jsonl matched its checksum (left for DuckDB to parse). */
  metricsVerified?: true;
}

/** Reads and verifies the entry `name` of `cache` for the store (blocking reads: the thread has nothing else to do). */
export async function verifyForStore(cache: string, name: string): Promise<VerifiedEntry> {
  const p = entryPaths(cache, name);
  const s = await inspectEntry(p, { rawMetrics: true, blocking: true });
  if (s.problems.length || !s.record) return { problems: s.problems, record: null };
  const r = withLiveStatus(s.record, p);
  const parent = r.manifest.hash_inputs?.parent;
  const manifest = { ...r.manifest, hash_inputs: (parent ? { parent } : {}) as HashInputs };
  return {
    problems: [],
    record: { ...r, manifest, attempts: countAttemptsSync(p) },
    metricsVerified: s.metricsVerified,
  };
}

/** Below this many entries the Workers' start (module loading, ~0.1 s) costs more than it saves. */
const MIN_FOR_WORKERS = 1000;

/** A pool of verifying Workers; {@link close} ends them. */
export interface VerifyPool {
  /** The entries `names` of `cache`, verified, in order. */
  verify(cache: string, names: string[]): Promise<VerifiedEntry[]>;
  close(): void;
}

/**
 * A pool of `threads` Workers for `total` entries (none, verifying on this thread, when there are few entries or
 * Workers cannot start).
 */
export function verifyPool(total: number, threads = Math.min(4, navigator.hardwareConcurrency || 1)): VerifyPool {
  const inline: VerifyPool = {
    async verify(cache, names) {
      const out: VerifiedEntry[] = [];
      for (const n of names) out.push(await verifyForStore(cache, n));
      return out;
    },
    close() {},
  };
  if (total < MIN_FOR_WORKERS || threads < 2) return inline;
  let workers: Worker[];
  try {
    workers = Array.from(
      { length: threads },
      () => new Worker(new URL("./verify_worker.ts", import.meta.url).href, { type: "module" }),
    );
  } catch {
    return inline;
  }
  let nextId = 0;
  const pending = new Map<number, { resolve: (v: VerifiedEntry[]) => void; reject: (e: Error) => void }>();
  for (const w of workers) {
    w.onmessage = (e: MessageEvent<{ id: number; out?: VerifiedEntry[]; error?: string }>) => {
      const p = pending.get(e.data.id);
      pending.delete(e.data.id);
      if (e.data.error !== undefined) p?.reject(new Error(`verifying cache entries: ${e.data.error}`));
      else p?.resolve(e.data.out!);
    };
    w.onerror = (e) => {
      e.preventDefault();
      for (const p of pending.values()) p.reject(new Error(`verifying cache entries: ${e.message}`));
      pending.clear();
    };
  }
  const run = (w: Worker, cache: string, names: string[]) =>
    new Promise<VerifiedEntry[]>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      w.postMessage({ id, cache, names });
    });
  return {
    async verify(cache, names) {
      const share = Math.ceil(names.length / workers.length);
      const parts = await Promise.all(workers.map((w, i) => run(w, cache, names.slice(i * share, (i + 1) * share))));
      return parts.flat();
    },
    close() {
      for (const w of workers) w.terminate();
    },
  };
}
