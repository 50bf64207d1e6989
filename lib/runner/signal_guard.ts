/**
 * SIGINT/SIGTERM stop a run within seconds, even while the main thread is blocked inside one long
 * synchronous call (a BLAS/FFI kernel, a huge tfjs op) and so cannot run its signal listener.
 *
 * The CLI's handlers run on the main thread ({@link guardSignals}); beside them a watchdog Worker
 * (lib/runner/signal_worker.ts) listens for the same signals on its own thread. When the main thread has not
 * taken the signal within {@link GRACE_MS}, the watchdog writes what the main handler would have (the run's
 * `interrupted` status and the attempt's `end` line, at the last step the trainer reported) and ends the
 * process with exit code 130. A shared cell decides which of the two handles a signal, so the end line is
 * written once. The entry stays resumable: its checkpoints are atomic and its lock is an OS file lock,
 * released with the process.
 *
 * @module
 */
import { appendAttemptSync, type EntryPaths, writeStatusSync } from "./cache.ts";
import type { RunStatusRecord } from "../core/records.ts";

/** How long the main thread has to take a signal before the watchdog ends the process. */
export const GRACE_MS = 1500;
/** The exit code of an interrupted command (128 + SIGINT, as the main handlers use for both signals). */
export const INTERRUPTED_EXIT = 130;

/** The run this process is training, as the signal handlers need it. */
export interface InterruptedRun {
  paths: EntryPaths;
  status: RunStatusRecord;
  hostname: string;
}

/** Writes the run's `interrupted` status and the attempt's `end` line (best effort, synchronous). */
export function writeInterruptedSync(run: InterruptedRun, step: number, detail: string): void {
  const at = new Date().toISOString();
  try {
    writeStatusSync(run.paths, { ...run.status, step, status: "interrupted", heartbeat_at: at });
  } catch { /* best effort: a stale running status is detected from the lock anyway */ }
  try {
    appendAttemptSync(run.paths, {
      event: "end",
      pid: Deno.pid,
      hostname: run.hostname,
      at,
      step,
      outcome: "interrupted",
      detail,
    });
  } catch { /* best effort, like the status */ }
}

/** Shared cells: [0] who handles the signal (0 nobody yet, 1 the main thread, 2 the watchdog); [1] the step. */
let shared: Int32Array | null = null;
let worker: Worker | null = null;

/**
 * Claims the signal for the main thread. False when the watchdog already took it: it is writing the end
 * line and ending the process, so the caller waits (at most a few seconds) instead of racing it.
 */
export function claimInterrupt(): boolean {
  if (!shared || Atomics.compareExchange(shared, 0, 0, 1) === 0) return true;
  Atomics.wait(shared, 0, 2, 10_000);
  return false;
}

/** Tells the watchdog which run is training (null: none). */
export function publishRun(run: InterruptedRun | null): void {
  if (!worker || !shared) return;
  if (run) Atomics.store(shared, 1, run.status.step ?? 0);
  worker.postMessage({ run });
}

/** Tells the watchdog the last step the trainer finished (a shared cell: no message, no cost). */
export function publishStep(step: number): void {
  if (shared) Atomics.store(shared, 1, step);
}

/**
 * Listens for SIGINT and SIGTERM with `onSignal` on the main thread and starts the watchdog beside it.
 * Returns the function that removes both.
 */
export function guardSignals(onSignal: () => void): () => void {
  if (!worker) {
    shared = new Int32Array(new SharedArrayBuffer(8));
    worker = new Worker(new URL("./signal_worker.ts", import.meta.url).href, { type: "module" });
    worker.postMessage({ shared: shared.buffer, graceMs: GRACE_MS, exitCode: INTERRUPTED_EXIT });
  }
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  return () => {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    worker?.terminate();
    worker = null;
    shared = null;
  };
}
