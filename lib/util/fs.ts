/**
 * Crash-safe file writes: write to a temp file in the same directory, fsync, then
 * rename over the target. A reader sees the old file or the new one, never half of one.
 *
 * @module
 */
import { dirname } from "node:path";
import { faultPoint } from "./fault.ts";

/** Writes bytes to `path` (created or truncated) and fsyncs it. */
export async function writeSynced(path: string, bytes: Uint8Array): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  try {
    let off = 0;
    while (off < bytes.length) off += await f.write(bytes.subarray(off));
    await f.sync();
  } finally {
    f.close();
  }
}

/** Whether a path exists (any other error than NotFound is thrown). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Writes bytes or text to `path` atomically (temp file + fsync + rename). */
export async function atomicWrite(path: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(path);
  await Deno.mkdir(dir, { recursive: true });
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  try {
    await writeSynced(tmp, bytes);
    faultPoint("fs.rename");
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {}); // e.g. a full disk: leave no temp file behind
    throw e;
  }
}

/** JSON variant of {@link atomicWrite} (pretty, trailing newline). */
export function atomicWriteJson(path: string, value: unknown): Promise<void> {
  return atomicWrite(path, JSON.stringify(value, null, 2) + "\n");
}

/** Reads and parses a JSON file, or returns null when it does not exist. */
export async function readJsonOrNull<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}
