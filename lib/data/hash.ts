/**
 * Hashing helpers of the data layer: the shared sha256 and canonical-JSON hashing of
 * lib/core/hash.ts, and the manifest hash.
 *
 * @module
 */
import { hashValue, sha256Hex } from "../core/hash.ts";
import type { DataManifest } from "./types.ts";

export { sha256Hex };

/** sha256 hex of the canonical JSON (RFC 8785) of a plain value. */
export const hashJson: (value: unknown) => string = hashValue;

/** The manifest's `hash`: sha256 over the canonical JSON of every field except `hash`. */
export function manifestHash(manifest: Omit<DataManifest, "hash"> & { hash?: string }): string {
  const { hash: _ignored, ...rest } = manifest;
  return hashJson(rest);
}
