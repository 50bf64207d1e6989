/**
 * Hashing helpers of the data layer: sha256 of bytes and of canonical JSON (RFC 8785,
 * npm `canonicalize`), and the manifest hash.
 *
 * @module
 */
import canonicalize from "canonicalize";
import { createHash } from "node:crypto";
import type { DataManifest } from "./types.ts";

/** sha256 hex of bytes or of a string's UTF-8 encoding. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** sha256 hex of the canonical JSON of a plain value. */
export function hashJson(value: unknown): string {
  const json = canonicalize(value);
  if (json === undefined) throw new TypeError("cannot hash a value that has no JSON form");
  return sha256Hex(json);
}

/** The manifest's `hash`: sha256 over the canonical JSON of every field except `hash`. */
export function manifestHash(manifest: Omit<DataManifest, "hash"> & { hash?: string }): string {
  const { hash: _ignored, ...rest } = manifest;
  return hashJson(rest);
}
