/**
 * Renders a {@link QueryResult} for people and tools:
 * - `table`: aligned text (numbers right-aligned, floats to 6 significant digits, NULL shown as `NULL`,
 *   long cells cut at `maxWidth`) with a `(N rows)` footer;
 * - `csv`: RFC 4180 (CRLF line ends, quotes only where needed, NULL as an empty field, full-precision numbers);
 * - `json`: an array of row objects, pretty-printed;
 * - `md`: a GitHub Markdown table (numeric columns right-aligned).
 *
 * @module
 */
import type { JsonValue, QueryResult } from "./result.ts";

/** Output formats of {@link formatResult}. */
export type OutputFormat = "table" | "csv" | "json" | "md";

/** The formats, for CLI validation. */
export const OUTPUT_FORMATS: readonly OutputFormat[] = ["table", "csv", "json", "md"];

/** Options of {@link formatResult}. */
export interface FormatOptions {
  /** `table` only: cut cells longer than this many characters (with `…`). Default 60; 0 = never. */
  maxWidth?: number;
}

const INTEGER_TYPES = /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|BIGNUM)$/;
const FLOAT_TYPES = /^(FLOAT|DOUBLE|DECIMAL(\(\d+,\s*\d+\))?)$/;

function isNumericType(type: string): boolean {
  return INTEGER_TYPES.test(type) || FLOAT_TYPES.test(type);
}

/** Drops trailing zeros of a decimal mantissa: `2.50000` -> `2.5`, `3.000e-7` -> `3e-7`. */
function stripZeros(s: string): string {
  const [mant, exp] = s.split("e");
  const m = mant.includes(".") ? mant.replace(/0+$/, "").replace(/\.$/, "") : mant;
  return exp === undefined ? m : `${m}e${exp}`;
}

/** Human float: 6 significant digits, plain notation for 1e-4 <= |x| < 1e15, exponent otherwise. */
export function formatFloat(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a < 1e-4 || a >= 1e15) return stripZeros(x.toExponential(5));
  if (a >= 1e5) return x.toFixed(0);
  return stripZeros(x.toPrecision(6));
}

/** Display text of one cell (table and Markdown). */
function displayCell(v: JsonValue, type: string, newline = "\\n"): string {
  if (v === null) return "NULL";
  if (typeof v === "number") return FLOAT_TYPES.test(type) ? formatFloat(v) : String(v);
  if (typeof v === "string") {
    if (!/[\r\n\t]/.test(v)) return v; // the common case, without three replaces (100k-row listings)
    return v.replace(/\r?\n/g, newline).replace(/\t/g, "\\t").replace(/\r/g, "\\r");
  }
  if (typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

/** Length in code points (so `…` and most accented letters count as one column). */
function width(s: string): number {
  return /[\ud800-\udfff]/.test(s) ? [...s].length : s.length; // without surrogates, code units are code points
}

function cut(s: string, max: number): string {
  if (max <= 0 || s.length <= max || width(s) <= max) return s; // code points <= code units
  return [...s].slice(0, Math.max(1, max - 1)).join("") + "…";
}

function table(result: QueryResult, opts: FormatOptions): string {
  const max = opts.maxWidth ?? 60;
  const cols = result.columns;
  const right = cols.map((c) => isNumericType(c.type));
  // One pass per column: each cell's text and width computed once (a 100k-row `runs` listing is 1.1M cells).
  const texts: string[][] = [];
  const lens: number[][] = [];
  const widths = cols.map((c) => width(c.name));
  cols.forEach((c, j) => {
    const float = FLOAT_TYPES.test(c.type);
    const t: string[] = new Array(result.rows.length);
    const l: number[] = new Array(result.rows.length);
    let w = widths[j];
    result.rows.forEach((row, i) => {
      const v = row[c.name] ?? null;
      const s = cut(typeof v === "number" ? (float ? formatFloat(v) : String(v)) : displayCell(v, c.type), max);
      t[i] = s;
      const n = width(s);
      l[i] = n;
      if (n > w) w = n;
    });
    texts.push(t);
    lens.push(l);
    widths[j] = w;
  });
  const n = result.rows.length;
  const footer = `(${n} row${n === 1 ? "" : "s"})`;
  if (cols.length === 0) return footer + "\n";
  const line = (cell: (j: number) => string, len: (j: number) => number) => {
    let out = "";
    for (let j = 0; j < cols.length; j++) {
      const fill = " ".repeat(widths[j] - len(j));
      out += `${j ? "|" : ""} ${right[j] ? fill + cell(j) : cell(j) + fill} `;
    }
    return out.trimEnd();
  };
  const out = [
    line((j) => cols[j].name, (j) => width(cols[j].name)),
    widths.map((w) => "-".repeat(w + 2)).join("+"),
  ];
  for (let i = 0; i < n; i++) out.push(line((j) => texts[j][i], (j) => lens[j][i]));
  out.push(footer);
  return out.join("\n") + "\n";
}

function csvField(v: JsonValue): string {
  if (v === null) return "";
  const s = typeof v === "string" ? v : typeof v === "object" ? JSON.stringify(v) : String(v);
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

function csv(result: QueryResult): string {
  const cols = result.columns;
  if (cols.length === 0) return "";
  const lines = [cols.map((c) => csvField(c.name)).join(",")];
  for (const row of result.rows) lines.push(cols.map((c) => csvField(row[c.name] ?? null)).join(","));
  return lines.join("\r\n") + "\r\n";
}

function json(result: QueryResult): string {
  const rows = result.rows.map((row) => Object.fromEntries(result.columns.map((c) => [c.name, row[c.name] ?? null])));
  return JSON.stringify(rows, null, 2) + "\n";
}

function mdCell(s: string): string {
  return s.replaceAll("|", "\\|");
}

function markdown(result: QueryResult): string {
  const cols = result.columns;
  if (cols.length === 0) return "";
  const row = (vals: string[]) => `| ${vals.join(" | ")} |`;
  const out = [
    row(cols.map((c) => mdCell(c.name))),
    row(cols.map((c) => (isNumericType(c.type) ? "---:" : "---"))),
  ];
  for (const r of result.rows) out.push(row(cols.map((c) => mdCell(displayCell(r[c.name] ?? null, c.type, "<br>")))));
  return out.join("\n") + "\n";
}

/** Formats a query result as `table`, `csv`, `json` or `md` text (each ends with a newline unless empty). */
export function formatResult(result: QueryResult, format: OutputFormat, opts: FormatOptions = {}): string {
  switch (format) {
    case "table":
      return table(result, opts);
    case "csv":
      return csv(result);
    case "json":
      return json(result);
    case "md":
      return markdown(result);
    default:
      throw new Error(`unknown output format ${JSON.stringify(format)}; use one of: ${OUTPUT_FORMATS.join(", ")}`);
  }
}
