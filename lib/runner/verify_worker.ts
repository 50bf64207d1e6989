/**
 * A Worker of {@link verifyPool} (lib/runner/verify_pool.ts): verifies the cache entries it is sent, one message
 * per share of a batch, and answers with them in order.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type VerifiedEntry, verifyForStore } from "./verify_pool.ts";

self.onmessage = async (e: MessageEvent) => {
  const { id, cache, names } = e.data as { id: number; cache: string; names: string[] };
  try {
    const out: VerifiedEntry[] = [];
    for (const n of names) out.push(await verifyForStore(cache, n));
    self.postMessage({ id, out });
  } catch (err) {
    self.postMessage({ id, error: err instanceof Error ? err.stack ?? err.message : String(err) });
  }
};
