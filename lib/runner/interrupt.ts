/**
 * The run this process is training, for signal handlers: {@link markInterrupted} marks it interrupted and
 * releases its lock. Kept apart from execute.ts so a handler can be installed without loading the trainer.
 *
 * @module
 */
import { appendAttemptSync, type EntryPaths, writeStatusSync } from "./cache.ts";
import type { Lock } from "./lock.ts";
import type { RunStatusRecord } from "../core/records.ts";

/** The run currently training in this process (set by lib/runner/execute.ts while it trains). */
export const training: {
  current: { paths: EntryPaths; lock: Lock; status: RunStatusRecord; hostname: string } | null;
} = { current: null };

/**
 * Marks the run this process is training as interrupted and releases its lock. Called
 * from SIGINT/SIGTERM handlers; synchronous so it completes before exit.
 */
export function markInterrupted(): void {
  const current = training.current;
  if (!current) return;
  const at = new Date().toISOString();
  const s: RunStatusRecord = { ...current.status, status: "interrupted", heartbeat_at: at };
  try {
    writeStatusSync(current.paths, s);
  } catch { /* best effort: a stale running status is detected from the lock anyway */ }
  try {
    const end = { event: "end" as const, pid: Deno.pid, hostname: current.hostname, at, step: s.step ?? 0 };
    appendAttemptSync(current.paths, { ...end, outcome: "interrupted", detail: "stopped by a signal" });
  } catch { /* best effort, like the status */ }
  current.lock.release();
  training.current = null;
}
