/**
 * Validation of a {@link DataConfig}: each problem names the field, the bad value and
 * what is allowed, so a user can fix it without reading code.
 *
 * @module
 */
import { type DataConfig, DEFAULT_DATA } from "../core/config.ts";
import { DataError } from "./normalize.ts";

/** Sources `data.source` may name. */
export const DATA_SOURCES = ["gutenberg", "sotu", "file"] as const;
/** Tokenizers `data.tokenizer` may name. */
export const TOKENIZERS = ["bytes"] as const;

function show(v: unknown): string {
  if (v === undefined) return "(missing)";
  if (typeof v === "number") return Number.isNaN(v) ? "NaN" : String(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);

/** Problems of a data config (empty when valid). */
export function validateData(cfg: DataConfig): string[] {
  if (typeof cfg !== "object" || cfg === null || Array.isArray(cfg)) {
    return [`data = ${show(cfg)} must be an object with keys ${Object.keys(DEFAULT_DATA).join(", ")}`];
  }
  const c = cfg as unknown as Record<string, unknown>;
  const out: string[] = [];
  const known = Object.keys(DEFAULT_DATA);
  for (const k of Object.keys(c)) {
    if (!known.includes(k)) out.push(`data.${k} is not a known key; known keys: ${known.join(", ")}`);
  }
  if (!(DATA_SOURCES as readonly unknown[]).includes(c.source)) {
    out.push(`data.source = ${show(c.source)} is not a known source; use one of: ${DATA_SOURCES.join(", ")}`);
  }
  if (c.source === "file") {
    if (typeof c.path !== "string" || c.path.length === 0) {
      out.push(
        `data.path = ${show(c.path)} must name a .txt/.jsonl/.parquet file or a directory of them ` +
          `when data.source = "file"`,
      );
    }
  } else if (c.path !== null && c.path !== undefined) {
    out.push(
      `data.path = ${show(c.path)} is only read when data.source = "file" (data.source is ${show(c.source)}); ` +
        `set data.source=file or data.path=null`,
    );
  }
  if (typeof c.text_field !== "string" || c.text_field.length === 0) {
    out.push(`data.text_field = ${show(c.text_field)} must be a non-empty field/column name`);
  }
  const vf = c.val_fraction;
  if (typeof vf !== "number" || !Number.isFinite(vf) || vf <= 0 || vf > 0.5) {
    out.push(`data.val_fraction = ${show(vf)} must be in (0, 0.5]`);
  }
  const ss = c.split_seed;
  if (!isInt(ss) || ss < 0 || ss > 0xffffffff) {
    out.push(`data.split_seed = ${show(ss)} must be an integer in [0, 4294967295]`);
  }
  if (!(TOKENIZERS as readonly unknown[]).includes(c.tokenizer)) {
    out.push(`data.tokenizer = ${show(c.tokenizer)} is not a known tokenizer; use one of: ${TOKENIZERS.join(", ")}`);
  }
  const mb = c.max_bytes;
  if (mb !== null && (!isInt(mb) || mb < 1 || mb > Number.MAX_SAFE_INTEGER)) {
    out.push(`data.max_bytes = ${show(mb)} must be null (all) or an integer >= 1`);
  }
  return out;
}

/** Throws a DataError listing every problem of `cfg`, if any. */
export function assertValidData(cfg: DataConfig): void {
  const problems = validateData(cfg);
  if (problems.length > 0) {
    throw new DataError(`invalid data config:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}
