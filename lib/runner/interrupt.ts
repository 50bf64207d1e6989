/**
 * Stopping a run from a signal handler: {@link markInterrupted} marks the run this process is training as
 * interrupted and releases its lock. The marking is registered by lib/runner/execute.ts while a run trains
 * ({@link onInterrupt}), so a handler can be installed without loading the trainer or the cache.
 *
 * @module
 */

/**
 * Exit code of an `exp --run <hash>` process that checkpointed on the pre-kill signal and stopped (EX_TEMPFAIL):
 * the Slurm task script requeues it.
 */
export const PREEMPTED_EXIT = 75;

let stop: (() => void) | null = null;

/** Registers what {@link markInterrupted} does for the run training now (null: none is training). */
export function onInterrupt(fn: (() => void) | null): void {
  stop = fn;
}

/**
 * Marks the run this process is training as interrupted and releases its lock. Called
 * from SIGINT/SIGTERM handlers; synchronous so it completes before exit.
 */
export function markInterrupted(): void {
  const fn = stop;
  stop = null;
  fn?.();
}
