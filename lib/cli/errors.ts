/**
 * Turns errors into one clear paragraph on stderr and an exit code: what is wrong and how to fix
 * it. Known user errors (bad config, unknown experiment, bad data, bad SQL) print without a stack
 * trace and exit 2; environmental failures (disk full, database locked or corrupt) exit 1 with
 * what to do; anything else is a bug and exits 1 (FINELAB_DEBUG=1 shows the stack).
 *
 * @module
 */
import { CommanderError } from "commander";
import { ConfigError } from "../experiment/validate.ts";
import { DataError } from "../data/normalize.ts";
import { StoreCorruptError, StoreLockedError } from "../store/types.ts";
import { SlurmError } from "../executor/slurm/commands.ts";

// The runner's ExperimentError and CorruptEntryError are recognised by name, so that printing an error does
// not load the planner or the cache (a no-op `exp` loads neither).
const named = (e: unknown, name: string) => e instanceof Error && e.name === name;

/** A user-facing error with its own exit code. */
export class UserError extends Error {
  /** Process exit code. */
  readonly code: number;
  /** Builds the error. */
  constructor(message: string, code = 2) {
    super(message);
    this.name = "UserError";
    this.code = code;
  }
}

/** True for "no space left on device", however it surfaced (Deno, DuckDB, a simulated fault). */
export function isDiskFull(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown } | null;
  return err?.code === "ENOSPC" || /No space left on device|ENOSPC|os error 28/i.test(String(err?.message ?? ""));
}

function debugWanted(): boolean {
  try {
    return !!Deno.env.get("FINELAB_DEBUG");
  } catch {
    return false;
  }
}

/** Prints `e` for a human and returns the exit code to use. */
export function reportError(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander already printed it
  if (
    e instanceof ConfigError || named(e, "ExperimentError") || e instanceof UserError || e instanceof SlurmError
  ) {
    console.error(`error: ${(e as Error).message}`);
    return e instanceof UserError ? e.code : 2;
  }
  if (e instanceof DataError) {
    console.error(
      `error: unusable dataset: ${e.message}\nFix the data.* settings (in the experiment module, a --config file ` +
        `or --set data.<key>=...) or the data files, then run again. Nothing was trained.`,
    );
    return 2;
  }
  if (e instanceof Error && /^backend (".+?" is unavailable|= .+ is not a)/.test(e.message)) {
    // lib/backends explains why the requested backend cannot run and how to fix it.
    console.error(`error: ${e.message}`);
    return 2;
  }
  if (isDiskFull(e)) {
    console.error(
      `error: the disk is full: ${(e as Error).message.split("\n")[0]}.\nNothing already finished is lost: ` +
        `completed runs and every verified checkpoint are kept and half-written files are discarded. Free some ` +
        `space on the file system of the results folder (FINELAB_RESULTS, default results/), then run the same ` +
        `command again: it resumes each run from its last checkpoint.`,
    );
    return 1;
  }
  if (e instanceof StoreLockedError || e instanceof StoreCorruptError || named(e, "CorruptEntryError")) {
    console.error(
      `error: ${(e as Error).message}` +
        (named(e, "CorruptEntryError") ? " Run the same command again: the entry is retrained, not loaded." : ""),
    );
    return 1;
  }
  const err = e as Error;
  console.error(`error: ${err?.message ?? String(e)}`);
  if (debugWanted()) console.error(err?.stack);
  else console.error("(this looks like a bug in finelab; set FINELAB_DEBUG=1 for the stack trace and report it)");
  return 1;
}
