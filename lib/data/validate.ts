/**
 * Validation of a {@link DataConfig}: each problem names the field, the bad value and
 * what is allowed, so a user can fix it without reading code. Whether the dataset id
 * exists is checked when it is resolved (lib/data/define.ts), which lists the known ids.
 *
 * @module
 */
import { type DataConfig, DEFAULT_DATA } from "../core/config.ts";
import { FILE_DATASET } from "./define.ts";
import { DataError } from "./normalize.ts";

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
  if (typeof c.dataset !== "string" || !/^[a-z0-9][a-z0-9._-]*$/.test(c.dataset)) {
    out.push(`data.dataset = ${show(c.dataset)} must be a dataset id (a module data/<id>.ts, or "file")`);
  }
  if (c.dataset === FILE_DATASET) {
    if (typeof c.path !== "string" || c.path.length === 0) {
      out.push(
        `data.path = ${show(c.path)} must name a .txt/.jsonl/.parquet file or a directory of them ` +
          `when data.dataset = "file"`,
      );
    }
  } else if (c.path !== null && c.path !== undefined) {
    out.push(
      `data.path = ${show(c.path)} is only read when data.dataset = "file" (data.dataset is ${show(c.dataset)}); ` +
        `set data.dataset=file or data.path=null`,
    );
  }
  if (typeof c.text_field !== "string" || c.text_field.length === 0) {
    out.push(`data.text_field = ${show(c.text_field)} must be a non-empty field/column name`);
  }
  const vf = c.val_fraction;
  if (vf !== null && (typeof vf !== "number" || !Number.isFinite(vf) || vf <= 0 || vf > 0.5)) {
    out.push(`data.val_fraction = ${show(vf)} must be null (the dataset's) or in (0, 0.5]`);
  }
  const ss = c.split_seed;
  if (ss !== null && (!isInt(ss) || ss < 0 || ss > 0xffffffff)) {
    out.push(`data.split_seed = ${show(ss)} must be null (the dataset's) or an integer in [0, 4294967295]`);
  }
  const mt = c.max_tokens;
  if (mt !== null && (!isInt(mt) || mt < 1 || mt > Number.MAX_SAFE_INTEGER)) {
    out.push(`data.max_tokens = ${show(mt)} must be null (all) or an integer >= 1`);
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
