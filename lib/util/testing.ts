/**
 * Test helpers for every layer: temporary folders that are removed however a test ends, so a test
 * states what it checks rather than its `try`/`finally` bookkeeping, and a bit-for-bit comparison of float32 values.
 *
 * @module
 */

/** A fresh temporary folder named `finelab-<prefix>-…`. */
export function tempDir(prefix: string): Promise<string> {
  return Deno.makeTempDir({ prefix: `finelab-${prefix}-` });
}

/** Removes folders and everything in them, ignoring errors (a folder already gone is fine). */
export async function removeDirs(...dirs: string[]): Promise<void> {
  for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
}

/**
 * Runs `fn` on the folder `dir` (a path, or a promise of one such as a fixture being built) and
 * removes the folder afterwards, whether `fn` returns or throws; returns what `fn` returns.
 */
export async function withDir<T>(dir: string | Promise<string>, fn: (dir: string) => T | Promise<T>): Promise<T> {
  const path = await dir;
  try {
    return await fn(path);
  } finally {
    await removeDirs(path);
  }
}

/** Runs `fn` on a fresh temporary folder ({@link tempDir}) and removes it afterwards ({@link withDir}). */
export function withTempDir<T>(prefix: string, fn: (dir: string) => T | Promise<T>): Promise<T> {
  return withDir(tempDir(prefix), fn);
}

/**
 * Asserts that `a` and `b` hold the same float32 values bit for bit (as float32: -0 and 0 differ, and so do NaNs of
 * other payloads); `what` names them in the message, which gives the first differing index.
 */
export function assertSameBits(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  const x = new Uint32Array(Float32Array.from(a).buffer), y = new Uint32Array(Float32Array.from(b).buffer);
  if (x.length !== y.length) throw new Error(`${what}: lengths ${x.length} vs ${y.length}`);
  const i = x.findIndex((v, j) => v !== y[j]);
  if (i !== -1) throw new Error(`${what}: first difference at ${i}: ${a[i]} vs ${b[i]}`);
}
