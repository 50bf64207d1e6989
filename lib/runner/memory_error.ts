/**
 * The error of lib/runner/memory.ts's check, in a module of its own so callers can recognise it without
 * loading the estimate (and the model code behind it).
 *
 * @module
 */

/** A plan whose largest run to train would not fit in the machine's available memory. */
export class MemoryError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "MemoryError";
  }
}
