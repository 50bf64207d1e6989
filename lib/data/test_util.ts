/**
 * Helpers of the data layer's tests.
 *
 * @module
 */

/** Runs `fn` on a fresh temporary folder and removes it afterwards. */
export async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "finelab-data-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
