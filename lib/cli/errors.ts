/**
 * Turns errors into one clear paragraph on stderr and an exit code. Known user
 * errors (bad config, unknown experiment, bad SQL) print without a stack trace.
 *
 * @module
 */
import { CommanderError } from "commander";
import { ConfigError } from "../experiment/validate.ts";
import { ExperimentError } from "../runner/plan.ts";

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

/** Prints `e` for a human and returns the exit code to use. */
export function reportError(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander already printed it
  if (e instanceof ConfigError || e instanceof ExperimentError || e instanceof UserError) {
    console.error(`error: ${e.message}`);
    return e instanceof UserError ? e.code : 2;
  }
  const err = e as Error;
  console.error(`error: ${err?.message ?? String(e)}`);
  if (Deno.env.get("FINELAB_DEBUG")) console.error(err?.stack);
  else console.error("(set FINELAB_DEBUG=1 for the stack trace)");
  return 1;
}
