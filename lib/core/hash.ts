/**
 * Hashing values: sha256, and canonical JSON (RFC 8785, npm `canonicalize`): key order does not
 * matter, numbers have one spelling. Values JSON cannot represent exactly (NaN, Infinity, undefined,
 * functions, Map/Set, bigint) are rejected rather than silently dropped. Run hashes
 * (lib/runner/identity.ts) and dataset manifests (lib/data/hash.ts) are built on these.
 *
 * @module
 */
import canonicalize from "canonicalize";
import { createHash } from "node:crypto";

/** sha256 hex of text or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Canonical JSON (RFC 8785) of a plain value; throws on values JSON cannot carry exactly. */
export function canonicalJson(value: unknown): string {
  const check = (v: unknown, path: string): void => {
    if (v === null || typeof v === "string" || typeof v === "boolean") return;
    if (typeof v === "number") {
      if (!Number.isFinite(v)) throw new TypeError(`cannot hash ${path || "value"} = ${v}: not a finite number`);
      return;
    }
    if (Array.isArray(v)) return v.forEach((x, i) => check(x, `${path}[${i}]`));
    if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) check(x, path ? `${path}.${k}` : k);
      return;
    }
    const what = typeof v === "object" ? (v as object).constructor?.name ?? "object" : typeof v;
    throw new TypeError(`cannot hash ${path || "value"}: ${what} is not plain JSON data`);
  };
  check(value, "");
  return canonicalize(value) as string;
}

/** sha256 of the canonical JSON of a value. */
export function hashValue(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}
